// Number, time and name formatting shared by every page.

const UTC_RESULT = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,3}))?$/;

/** Epoch ms of a result timestamp ("YYYY-MM-DD HH:MM:SS.mmm", UTC); NaN when it is not one. */
export function parseResultTime(text) {
  const m = typeof text === "string" ? UTC_RESULT.exec(text) : null;
  if (!m) return NaN;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], +(m[7] || "0").padEnd(3, "0"));
}

export function isResultTime(value) {
  return !Number.isNaN(parseResultTime(value));
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** "YYYY-MM-DD HH:MM:SS" in the browser's time zone (what charts and tables show). */
export function localTime(ms, { seconds = true } = {}) {
  const d = new Date(ms);
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return seconds ? `${text}:${pad(d.getSeconds())}` : text;
}

/** The value a datetime-local input takes for ms. */
export function inputTime(ms) {
  return localTime(ms).replace(" ", "T");
}

export function timeZoneName() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
}

/** "UTC+01:00" for the browser's current offset. */
export function utcOffset(ms = Date.now()) {
  const minutes = -new Date(ms).getTimezoneOffset();
  const sign = minutes >= 0 ? "+" : "-";
  const abs = Math.abs(minutes);
  return `UTC${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

export function fmtInt(n) {
  return n == null || Number.isNaN(n) ? "–" : Math.round(n).toLocaleString("en-US");
}

/** 1234 -> "1.23K", 1234567 -> "1.23M". */
export function fmtCompact(n) {
  if (n == null || Number.isNaN(n)) return "–";
  const abs = Math.abs(n);
  for (const [size, suffix] of [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]]) {
    if (abs >= size) return `${trim(n / size)}${suffix}`;
  }
  return trim(n);
}

function trim(n) {
  const abs = Math.abs(n);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return Number(n.toFixed(digits)).toLocaleString("en-US");
}

export function fmtMs(ms) {
  if (ms == null || Number.isNaN(ms)) return "–";
  if (Math.abs(ms) >= 1000) return `${trim(ms / 1000)} s`;
  return `${Math.round(ms)} ms`;
}

export function fmtPct(fraction, digits = 2) {
  if (fraction == null || Number.isNaN(fraction)) return "–";
  return `${(fraction * 100).toFixed(digits)}%`;
}

export function fmtUsd(n) {
  if (n == null || Number.isNaN(n)) return "–";
  const abs = Math.abs(n);
  if (abs === 0) return "$0";
  if (abs < 0.01) return `$${n.toLocaleString("en-US", { maximumSignificantDigits: 2 })}`;
  if (abs >= 1e4) return `$${fmtCompact(n)}`;
  return `$${n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

/** A model id made readable: inference-profile and foundation-model ARNs lose their ARN prefix. */
export function modelLabel(id) {
  if (id == null) return "(no model)";
  const text = String(id);
  if (text.startsWith("arn:")) {
    const slash = text.indexOf("/");
    if (slash >= 0) return text.slice(slash + 1);
  }
  return text;
}

const PALETTE = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777",
  "#4b5563", "#65a30d", "#7c3aed", "#0d9488"];

/** A colour per model, stable for a given ordered list of models. */
export function colorFor(index) {
  return PALETTE[index % PALETTE.length];
}

/** Milliseconds for "15m", "2h", "7d", "30s", "1w"; NaN when the text is not a duration. */
export function durationMs(text) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$/i.exec(text || "");
  if (!m) return NaN;
  const unit = { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8 }[m[2].toLowerCase()];
  return parseFloat(m[1]) * unit;
}

/** "15m" -> "15 minutes", "1h" -> "1 hour". */
export function durationWords(text) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$/i.exec(text || "");
  if (!m) return text;
  const word = { s: "second", m: "minute", h: "hour", d: "day", w: "week" }[m[2].toLowerCase()];
  return `${m[1]} ${word}${m[1] === "1" ? "" : "s"}`;
}

/** A short human span: 90 min -> "1.5 h". */
export function spanWords(ms) {
  if (ms < 6e4) return `${Math.round(ms / 1e3)} s`;
  if (ms < 3.6e6) return `${trim(ms / 6e4)} min`;
  if (ms < 8.64e7) return `${trim(ms / 3.6e6)} h`;
  return `${trim(ms / 8.64e7)} d`;
}

/** Escape text for HTML. */
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

/** Build an element: h("div", {class: "x", onclick}, child, "text"). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "html") el.innerHTML = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
