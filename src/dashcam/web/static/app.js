// The dashboard shell: routing between pages, the time range, auto-refresh, API calls and login.
//
// Every page is a module exporting mount(root, ctx) -> {reload(), dispose()}. The time range, the
// auto-refresh period and each page's own state live in the URL, so any view can be shared.

import { durationMs, durationWords, inputTime, localTime, parseResultTime, timeZoneName, utcOffset } from "./format.js";

const PAGES = {
  "/": () => import("./overview.js"),
  "/models": () => import("./models.js"),
  "/query": () => import("./query.js"),
  "/invocation": () => import("./invocation.js"),
  "/alarms": () => import("./alarms.js"),
  "/alarm": () => import("./alarm.js"),
  "/dashboards": () => import("./dashboards.js"),
  "/dashboard": () => import("./dashboard.js"),
  "/settings": () => import("./settings.js"),
};
const PAGE_TAB = { "/": "overview", "/models": "models", "/query": "query", "/invocation": "query",
  "/alarms": "alarms", "/alarm": "alarms", "/dashboards": "dashboards", "/dashboard": "dashboards", "/settings": "settings" };
const TAB_PATH = { overview: "/", models: "/models", query: "/query", alarms: "/alarms", dashboards: "/dashboards",
  settings: "/settings" };
const PRESETS = ["5m", "15m", "30m", "1h", "3h", "6h", "12h", "1d", "3d", "7d", "30d", "all"];
const DEFAULT_RANGE = "6h";
const KEY_STORAGE = "dashcam.key";
// Parameters every page keeps when moving to another page.
const SHARED_PARAMS = ["range", "start", "end", "refresh"];

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `the server answered ${status}`);
    this.status = status;
    this.messages = error.messages || [];
    this.code = error.code || String(status);
    this.line = error.line;
    this.column = error.column;
  }
}

/** Raised when the server wants a key: the login form is showing, so pages stay quiet about it. */
export class LoginRequired extends Error {
  quiet = true;
}

// ---------------------------------------------------------------------------- API

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

/**
 * Call dashcam's JSON API; its `data` on success, ApiError otherwise (LoginRequired on 401).
 * `body` is sent as JSON; `text` is sent as it is (JSON text the user wrote, kept byte for byte).
 */
export async function api(path, { method = "GET", body, text, signal } = {}) {
  const headers = { Accept: "application/json" };
  const key = storedKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const sent = text !== undefined ? text : body === undefined ? undefined : JSON.stringify(body);
  if (sent !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, signal, body: sent });
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (response.status === 401) {
    showLogin(key ? (payload?.error?.message || "That key was refused.") : "");
    throw new LoginRequired("a key is needed");
  }
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload.data;
}

/** Run a Logs Insights query and wait for its rows: {columns, rows, statistics}. */
export function runQuery(text, { start, end, limit = 10000, logGroups, signal } = {}) {
  const body = { query: text, limit };
  if (start != null) body.start = String(Math.floor(start));
  if (end != null) body.end = String(Math.floor(end));
  if (logGroups && logGroups.length) body.logGroups = logGroups;
  return api("/api/v1/query", { method: "POST", body, signal });
}

/** A Logs Insights string literal. */
export function quote(text) {
  return `"${String(text).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

let whoamiCache = null;

/** Who the stored key (or an open server's anonymous admin) is: {keyId, role, logGroups, secured}. */
export async function whoami(signal) {
  const key = storedKey() || "";
  if (whoamiCache && whoamiCache.key === key) return whoamiCache.value;
  const value = await api("/api/v1/whoami", { signal });
  whoamiCache = { key, value };
  return value;
}

/** True when `who` may change everything (an admin over every log group). */
export function isFullAdmin(who) {
  return who?.role === "admin" && who?.logGroups === "*";
}

/** True when `who` is an admin on log group `group` (the server checks it again on every change). */
export function isAdminOn(who, group) {
  return who?.role === "admin" && (who.logGroups === "*" || globMatch(who.logGroups, group));
}

/** Whether a glob (*, ?, [...], [!...]) matches a name, as the server's fnmatchcase does. */
export function globMatch(pattern, name) {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    const close = c === "[" ? pattern.indexOf("]", i + 2) : -1;
    if (c === "*") source += ".*";
    else if (c === "?") source += ".";
    else if (close > 0) {
      const inner = pattern.slice(i + 1, close).replace(/\\/g, "\\\\");
      source += inner.startsWith("!") ? `[^${inner.slice(1)}]` : `[${inner}]`;
      i = close;
    } else source += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`, "s").test(name);
}

// ---------------------------------------------------------------------------- time range

/** The range the URL asks for: {kind: "relative", value} | {kind: "all"} | {kind: "absolute", start, end}. */
export function rangeFromParams(params) {
  const start = urlTime(params.get("start"));
  const end = urlTime(params.get("end"));
  if (start < end) return { kind: "absolute", start, end };
  const value = params.get("range") || DEFAULT_RANGE;
  if (value === "all") return { kind: "all" };
  return Number.isNaN(durationMs(value)) ? { kind: "relative", value: DEFAULT_RANGE } : { kind: "relative", value };
}

/** Epoch ms of a URL time: ISO-8601 (what the dashboard writes) or epoch milliseconds. */
function urlTime(text) {
  if (!text) return NaN;
  return /^\d+$/.test(text) ? Number(text) : Date.parse(text);
}

/** How the URL writes a time: ISO-8601 UTC, readable when the link is shared. */
export function timeParam(ms) {
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

export function rangeLabel(range) {
  if (range.kind === "all") return "All data";
  if (range.kind === "relative") return `Last ${durationWords(range.value)}`;
  const show = (ms) => localTime(ms, { seconds: new Date(ms).getSeconds() !== 0 });
  const start = show(range.start);
  const end = show(range.end);
  // The end's date is left out when it is the start's.
  return `${start} → ${end.slice(0, 10) === start.slice(0, 10) ? end.slice(11) : end}`;
}

let extentCache = null;

/** The time span of all stored events ({start, end} ms), for the "All data" range. */
async function dataExtent(signal) {
  if (extentCache && Date.now() - extentCache.at < 10_000) return extentCache.value;
  const result = await runQuery("stats min(@timestamp) as first, max(@timestamp) as last", { signal, limit: 1 });
  const row = result.rows[0] || {};
  const first = parseResultTime(row.first);
  const last = parseResultTime(row.last);
  const value = Number.isNaN(first) ? { start: Date.now() - 3.6e6, end: Date.now() } : { start: first, end: last + 1000 };
  extentCache = { at: Date.now(), value };
  return value;
}

/** The current range as absolute epoch ms {start, end, label, spanMs}. */
export async function resolveRange(signal) {
  const range = rangeFromParams(currentParams());
  let start, end;
  if (range.kind === "absolute") ({ start, end } = range);
  else if (range.kind === "all") ({ start, end } = await dataExtent(signal));
  else {
    end = Date.now();
    start = end - durationMs(range.value);
  }
  return { start, end, spanMs: end - start, label: rangeLabel(range), kind: range.kind };
}

// ---------------------------------------------------------------------------- URL state

export function currentParams() {
  return new URLSearchParams(location.search);
}

/** Change URL parameters (null deletes) without leaving the page; push adds a history entry. */
export function setParams(changes, { push = false } = {}) {
  const params = currentParams();
  for (const [key, value] of Object.entries(changes)) {
    params.delete(key);
    if (value == null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else params.set(key, value);
  }
  const url = `${location.pathname}${params.toString() ? `?${params}` : ""}`;
  history[push ? "pushState" : "replaceState"](null, "", url);
  syncChrome();
}

/** A link to another page that keeps the time range and refresh period. */
export function pageUrl(path, extra = {}) {
  const params = new URLSearchParams();
  const now = currentParams();
  for (const key of SHARED_PARAMS) if (now.get(key)) params.set(key, now.get(key));
  for (const [key, value] of Object.entries(extra)) {
    if (value == null) continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else params.set(key, value);
  }
  const query = params.toString();
  return query ? `${path}?${query}` : path;
}

// ---------------------------------------------------------------------------- routing

const root = () => document.getElementById("page");
let active = null; // {path, page}
let refreshTimer = null;

export function navigate(url, { replace = false } = {}) {
  history[replace ? "replaceState" : "pushState"](null, "", url);
  route();
}

async function route() {
  const path = PAGES[location.pathname] ? location.pathname : "/";
  syncChrome();
  if (active) active.page.dispose?.();
  active = null;
  const container = root();
  container.replaceChildren();
  const module = await PAGES[path]();
  const ctx = { api, runQuery, resolveRange, setParams, currentParams, navigate, pageUrl, quote, whoami };
  active = { path, page: module.mount(container, ctx) };
  document.title = `${module.TITLE || "dashcam"} · dashcam`;
}

function reloadActive() {
  active?.page.reload?.();
}

/** Draw the parts of the top bar that follow the URL: active tab, range label, refresh, links. */
function syncChrome() {
  const params = currentParams();
  const tab = PAGE_TAB[location.pathname] || "overview";
  for (const link of document.querySelectorAll(".tabs a")) {
    const current = link.dataset.page === tab;
    link.classList.toggle("active", current);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
    link.href = pageUrl(TAB_PATH[link.dataset.page]);
  }
  document.getElementById("range-label").textContent = rangeLabel(rangeFromParams(params));
  const refresh = params.get("refresh") || "0";
  const select = document.getElementById("refresh-select");
  if (select.value !== refresh) select.value = [...select.options].some((o) => o.value === refresh) ? refresh : "0";
  scheduleRefresh(Number(select.value));
  document.getElementById("logout").hidden = !storedKey();
}

function scheduleRefresh(seconds) {
  if (refreshTimer && refreshTimer.seconds === seconds) return;
  if (refreshTimer) clearInterval(refreshTimer.id);
  refreshTimer = seconds > 0 ? { seconds, id: setInterval(() => document.hidden || reloadActive(), seconds * 1000) } : null;
}

// ---------------------------------------------------------------------------- range picker

function setUpRangePicker() {
  const button = document.getElementById("range-button");
  const popover = document.getElementById("range-popover");
  const presets = document.getElementById("range-presets");
  const custom = document.getElementById("range-custom");
  const from = document.getElementById("range-from");
  const to = document.getElementById("range-to");
  const error = document.getElementById("range-error");
  document.getElementById("range-tz").textContent = `Times are in your browser's time zone: ${timeZoneName()} (${utcOffset()}).`;

  for (const value of PRESETS) {
    const preset = document.createElement("button");
    preset.type = "button";
    preset.className = "preset";
    preset.dataset.range = value;
    preset.textContent = value === "all" ? "All data" : value;
    preset.title = value === "all" ? "Everything stored" : `Last ${durationWords(value)}`;
    preset.addEventListener("click", () => apply({ range: value, start: null, end: null }));
    presets.append(preset);
  }

  const open = async () => {
    error.textContent = "";
    const range = rangeFromParams(currentParams());
    for (const preset of presets.children) preset.classList.toggle("selected", range.kind !== "absolute" && preset.dataset.range === (range.value || "all"));
    custom.value = range.kind === "relative" && !PRESETS.includes(range.value) ? range.value : "";
    try {
      const resolved = await resolveRange();
      from.value = inputTime(resolved.start);
      to.value = inputTime(resolved.end);
    } catch {
      /* the fields stay empty; the user can still pick */
    }
    popover.hidden = false;
    button.setAttribute("aria-expanded", "true");
    (presets.querySelector(".selected") || presets.firstElementChild).focus();
  };
  const close = () => {
    popover.hidden = true;
    button.setAttribute("aria-expanded", "false");
  };
  const apply = (changes) => {
    close();
    extentCache = null;
    setParams(changes, { push: true });
    reloadActive();
  };

  button.addEventListener("click", () => (popover.hidden ? open() : close()));
  document.getElementById("range-cancel").addEventListener("click", () => { close(); button.focus(); });
  document.getElementById("range-apply").addEventListener("click", () => {
    if (custom.value.trim()) {
      if (Number.isNaN(durationMs(custom.value))) {
        error.textContent = "Write a relative range as a number and a unit: 45m, 2h, 10d.";
        return;
      }
      apply({ range: custom.value.trim().toLowerCase(), start: null, end: null });
      return;
    }
    const start = new Date(from.value).getTime();
    const end = new Date(to.value).getTime();
    if (Number.isNaN(start) || Number.isNaN(end) || start >= end) {
      error.textContent = "Pick a start before the end.";
      return;
    }
    apply({ range: null, start: timeParam(start), end: timeParam(end) });
  });
  custom.addEventListener("keydown", (e) => e.key === "Enter" && document.getElementById("range-apply").click());
  popover.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { close(); button.focus(); }
  });
  document.addEventListener("click", (e) => {
    if (!popover.hidden && !popover.contains(e.target) && !button.contains(e.target)) close();
  });
}

// ---------------------------------------------------------------------------- login

function showLogin(message) {
  const overlay = document.getElementById("login");
  document.getElementById("login-error").textContent = message || "";
  if (overlay.hidden) {
    overlay.hidden = false;
    document.getElementById("login-key").focus();
  }
}

function setUpLogin() {
  const form = document.getElementById("login-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = document.getElementById("login-key").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    try {
      await api("/api/v1/saved-queries"); // any read checks the key
    } catch (err) {
      if (!(err instanceof LoginRequired)) document.getElementById("login-error").textContent = err.message;
      return;
    }
    document.getElementById("login").hidden = true;
    document.getElementById("login-key").value = "";
    syncChrome();
    route();
  });
  document.getElementById("logout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    whoamiCache = null;
    syncChrome();
    route();
  });
}

// ---------------------------------------------------------------------------- start

function setUp() {
  setUpRangePicker();
  setUpLogin();
  document.getElementById("refresh-select").addEventListener("change", (e) => {
    setParams({ refresh: e.target.value === "0" ? null : e.target.value });
  });
  document.getElementById("refresh-now").addEventListener("click", () => { extentCache = null; reloadActive(); });
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-nav]");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener("popstate", route);
  route();
}

setUp();
