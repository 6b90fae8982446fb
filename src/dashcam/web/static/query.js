// Query: a Logs Insights editor with saved queries and history; results as a table and, for
// bin() results, as a chart; CSV/JSON export. The query and time range live in the URL.

import { purge, timeChart } from "./charts.js";
import { createEditor } from "./editor.js";
import { colorFor, h, isResultTime, localTime, modelLabel, parseResultTime } from "./format.js";
import { resultTable } from "./table.js";
import { card, download, empty, loading, quiet, show, toCsv } from "./ui.js";

export const TITLE = "Query";

const HISTORY_KEY = "dashcam.history";
const HISTORY_SIZE = 50;
const MAX_SERIES = 12;
const DEFAULT_QUERY = "fields @timestamp, modelId, operation, latencyMs, errorCode\n| sort @timestamp desc\n| limit 100";

export function mount(root, ctx) {
  const params = ctx.currentParams();
  const editor = createEditor({ value: params.get("q") || DEFAULT_QUERY, onRun: () => run({ push: true }) });
  const runButton = h("button", { type: "button", class: "run", onclick: () => run({ push: true }) }, "Run query");
  const limitInput = h("input", { type: "number", min: "1", max: "100000", value: params.get("limit") || "1000",
    class: "limit", "aria-label": "Row limit" });
  const groupsBox = h("div", { class: "groups" });
  const status = h("div", { class: "run-status", role: "status", "aria-live": "polite" });
  const errorBox = h("div", { class: "query-error", role: "alert", hidden: true });
  const chartEl = h("div", { class: "chart", "data-chart": "query" });
  const measureBox = h("div", { class: "measure" });
  const chartCard = card("Chart", measureBox, chartEl);
  chartCard.hidden = true;
  const tableBox = h("div", { class: "query-results" });
  const exportCsv = h("button", { type: "button", class: "secondary", disabled: true }, "Export CSV");
  const exportJson = h("button", { type: "button", class: "secondary", disabled: true }, "Export JSON");
  const resultsCard = h("section", { class: "card results-card" },
    h("div", { class: "card-head" }, h("h2", {}, "Results"), h("div", { class: "actions" }, exportCsv, exportJson)),
    tableBox);
  const savedList = h("div", { class: "saved-list" }, loading());
  const historyList = h("ol", { class: "history-list" });

  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Query"),
      h("p", { class: "page-note" }, "CloudWatch Logs Insights syntax. Ctrl+Enter runs the query; the query and time range are in the URL, so the link shares this view.")),
    h("div", { class: "query-layout" },
      h("div", { class: "query-main" },
        h("section", { class: "card editor-card" },
          editor.element,
          h("div", { class: "editor-bar" }, runButton, groupsBox,
            h("label", { class: "inline" }, "Limit ", limitInput), status),
          errorBox),
        chartCard,
        resultsCard),
      h("aside", { class: "query-side", "aria-label": "Saved queries and history" },
        card("Saved queries", savedList),
        card("History", historyList))),
  );

  let controller = null;
  let result = null;
  let logGroups = params.getAll("group");

  exportCsv.addEventListener("click", () => result && download(`${fileStem()}.csv`, toCsv(result.columns, result.rows), "text/csv"));
  exportJson.addEventListener("click", () => result && download(`${fileStem()}.json`, `${JSON.stringify(result.rows, null, 2)}\n`, "application/json"));

  async function run({ push = false } = {}) {
    const text = editor.value.trim();
    if (!text) return;
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    const limit = Math.max(1, Math.min(100000, Number(limitInput.value) || 1000));
    const changed = text !== (ctx.currentParams().get("q") || "");
    ctx.setParams({ q: text, limit: limit === 1000 ? null : String(limit), group: logGroups }, { push: push && changed });
    remember(text);
    drawHistory();
    errorBox.hidden = true;
    editor.setError(null);
    runButton.disabled = true;
    show(status, loading("Running…"));
    const started = performance.now();
    try {
      const range = await ctx.resolveRange(signal);
      const body = { query: text, start: String(range.start), end: String(range.end), limit, pointers: true };
      if (logGroups.length) body.logGroups = logGroups;
      let job = await ctx.api("/api/v1/queries", { method: "POST", body, signal });
      // The server answers as soon as the query finishes (long poll), so this loop rarely turns twice.
      while (job.status === "Scheduled" || job.status === "Running") {
        job = await ctx.api(`/api/v1/queries/${job.queryId}?wait=10`, { signal });
      }
      if (job.status !== "Complete") throw Object.assign(new Error(job.error?.message || `the query ${job.status.toLowerCase()}`), job.error || {});
      result = { columns: job.columns, rows: job.rows, text };
      const seconds = ((performance.now() - started) / 1000).toFixed(2);
      show(status, `${job.rows.length.toLocaleString("en-US")} row${job.rows.length === 1 ? "" : "s"} in ${seconds} s · ${range.label}`);
      drawResult();
    } catch (error) {
      if (quiet(error)) return;
      show(status, "");
      result = null;
      showError(error);
      drawResult();
    } finally {
      runButton.disabled = false;
    }
  }

  function showError(error) {
    errorBox.hidden = false;
    if (error.line) {
      editor.setError({ line: error.line, column: error.column });
      const where = h("button", { type: "button", class: "link", onclick: () => editor.moveTo(error.line, error.column) },
        `Line ${error.line}, column ${error.column}`);
      show(errorBox, where, `: ${error.message.replace(/^line \d+, column \d+: /, "")}`);
    } else show(errorBox, error.message);
  }

  function drawResult() {
    exportCsv.disabled = exportJson.disabled = !result || !result.rows.length;
    purge(chartEl);
    chartCard.hidden = true;
    if (!result) {
      show(tableBox, empty("No results."));
      return;
    }
    if (!result.rows.length) {
      show(tableBox, empty("The query matched nothing in this time range."));
      return;
    }
    const openLink = result.columns.includes("@ptr") ? (row) => row["@ptr"] && ctx.pageUrl("/invocation", { ptr: row["@ptr"] }) : null;
    show(tableBox, resultTable(result.columns, result.rows, { limit: 500, openLink, sortable: true }));
    const plan = chartPlan(result);
    if (plan) {
      chartCard.hidden = false;
      drawChart(plan, plan.measures[0]);
    }
  }

  function drawChart(plan, measure) {
    if (plan.measures.length > 1) {
      const select = h("select", { "aria-label": "Value to chart" }, plan.measures.map((m) => h("option", { value: m, selected: m === measure }, m)));
      select.addEventListener("change", () => drawChart(plan, select.value));
      show(measureBox, h("label", { class: "inline" }, "Value ", select));
    } else show(measureBox);
    timeChart(chartEl, { series: seriesFor(plan, measure), unit: "rate", kind: "line", height: 300 });
  }

  async function loadSide() {
    try {
      // Group names and sizes by a query: /api/v1/log-groups also adds up stored bytes, which is slow on big stores.
      const [saved, groups] = await Promise.all([ctx.api("/api/v1/saved-queries"),
        ctx.runQuery("stats count(*) as events by @log | sort @log asc", { limit: 1000 })]);
      const byGroup = new Map();
      for (const q of saved) byGroup.set(q.group, [...(byGroup.get(q.group) || []), q]);
      show(savedList, [...byGroup].map(([group, queries]) => h("div", { class: "saved-group" },
        h("h3", {}, group),
        h("ul", {}, queries.map((q) => h("li", {}, h("button", { type: "button", class: "link saved", title: q.text,
          "data-saved": q.key, onclick: () => { editor.setValue(q.text); run({ push: true }); } }, q.title)))))));
      drawGroups(groups);
    } catch (error) {
      if (!quiet(error)) show(savedList, empty(error.message));
    }
  }

  function drawGroups(groups) {
    const chosen = new Set(logGroups);
    const summary = h("summary", {}, chosen.size ? `Log groups: ${chosen.size}` : "Log groups: all");
    const list = h("div", { class: "dropdown-body", role: "group", "aria-label": "Log groups" },
      groups.rows.length ? groups.rows.map((g) => {
        const name = g["@log"];
        const box = h("input", { type: "checkbox", value: name, checked: chosen.has(name) });
        box.addEventListener("change", () => {
          if (box.checked) chosen.add(name);
          else chosen.delete(name);
          logGroups = [...chosen];
          summary.textContent = chosen.size ? `Log groups: ${chosen.size}` : "Log groups: all";
        });
        return h("label", { class: "check" }, box, `${name} (${g.events.toLocaleString("en-US")} events)`);
      }) : empty("No log groups yet."));
    show(groupsBox, h("details", { class: "dropdown" }, summary, list));
  }

  function drawHistory() {
    const items = history();
    show(historyList, items.length ? items.map((item) => h("li", {},
      h("button", { type: "button", class: "link history-item", title: item.q, onclick: () => { editor.setValue(item.q); editor.focus(); } },
        item.q.replace(/\s+/g, " ").slice(0, 90)),
      h("span", { class: "when" }, localTime(item.at, { seconds: false })))) : h("li", { class: "muted" }, "Queries you run appear here."));
  }

  loadSide();
  drawHistory();
  if (params.get("q")) run();
  else show(tableBox, empty("Run a query, or pick a saved one."));
  return {
    reload: () => (result || params.get("q") ? run() : undefined),
    dispose() {
      controller?.abort();
      purge(chartEl);
    },
  };
}

function fileStem() {
  return `dashcam-query-${localTime(Date.now()).replace(/[-: ]/g, "").slice(0, 14)}`;
}

function history() {
  try {
    return JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
  } catch {
    return [];
  }
}

function remember(text) {
  const items = [{ q: text, at: Date.now() }, ...history().filter((item) => item.q !== text)].slice(0, HISTORY_SIZE);
  localStorage.setItem(HISTORY_KEY, JSON.stringify(items));
}

/**
 * How to chart a result, or null: bin() results have a time column (their bucket), numeric
 * measures, and possibly other group keys that split the series.
 */
export function chartPlan(result) {
  if (!/\b(bin|datefloor|dateceil)\s*\(/i.test(result.text)) return null;
  const { columns, rows } = result;
  const time = columns.find((c) => rows.every((r) => r[c] == null || isResultTime(r[c])) && rows.some((r) => r[c] != null));
  if (!time) return null;
  const measures = columns.filter((c) => c !== time && c !== "@ptr" && rows.some((r) => typeof r[c] === "number")
    && rows.every((r) => r[c] == null || typeof r[c] === "number"));
  if (!measures.length) return null;
  const keys = columns.filter((c) => c !== time && c !== "@ptr" && !measures.includes(c));
  return { time, measures, keys, rows };
}

function seriesFor(plan, measure) {
  const groups = new Map();
  for (const row of plan.rows) {
    const name = plan.keys.length ? plan.keys.map((k) => (/modelId$/.test(k) ? modelLabel(row[k]) : row[k] ?? "(none)")).join(" · ") : measure;
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name).push(row);
  }
  // The biggest series first; past MAX_SERIES the rest would be unreadable.
  const ranked = [...groups].map(([name, rows]) => [name, rows, rows.reduce((s, r) => s + (r[measure] || 0), 0)])
    .sort((a, b) => b[2] - a[2]).slice(0, MAX_SERIES);
  return ranked.map(([name, rows], i) => {
    const sorted = rows.filter((r) => r[plan.time] != null).sort((a, b) => parseResultTime(a[plan.time]) - parseResultTime(b[plan.time]));
    return { name, color: colorFor(i), x: sorted.map((r) => parseResultTime(r[plan.time])), y: sorted.map((r) => r[measure]) };
  });
}
