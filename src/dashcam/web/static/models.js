// Models: every model side by side — volume, latency percentiles, error and throttle rates,
// tokens, cost per request and per 1K output tokens.

import { barChart, purge } from "./charts.js";
import { colorFor, fmtCompact, fmtInt, fmtMs, fmtPct, fmtUsd, h, modelLabel } from "./format.js";
import { METRICS, derived } from "./metrics.js";
import { card, empty, failure, loading, quiet, show } from "./ui.js";

export const TITLE = "Models";

// Table columns: header, value from the row (after derived()), formatter, and whether higher is worse.
const COLUMNS = [
  { key: "requests", label: "Requests", value: (r) => r.requests, fmt: fmtInt },
  { key: "perMinute", label: "Req/min", value: (r, span) => (r.requests / span) * 6e4, fmt: fmtCompact },
  { key: "share", label: "Share", value: (r, span, total) => r.requests / total, fmt: (v) => fmtPct(v, 1) },
  { key: "errorRate", label: "Error rate", value: (r) => derived(r).errorRate, fmt: (v) => fmtPct(v), worse: true },
  { key: "throttleRate", label: "Throttle rate", value: (r) => derived(r).throttleRate, fmt: (v) => fmtPct(v), worse: true },
  { key: "p50", label: "p50", value: (r) => r.p50, fmt: fmtMs, worse: true },
  { key: "p90", label: "p90", value: (r) => r.p90, fmt: fmtMs, worse: true },
  { key: "p99", label: "p99", value: (r) => r.p99, fmt: fmtMs, worse: true },
  { key: "ttft50", label: "TTFT p50", value: (r) => r.ttft50, fmt: fmtMs, worse: true },
  { key: "inputTokens", label: "Input tokens", value: (r) => r.inputTokens, fmt: fmtCompact },
  { key: "outputTokens", label: "Output tokens", value: (r) => r.outputTokens, fmt: fmtCompact },
  { key: "cost", label: "Cost", value: (r) => r.cost, fmt: fmtUsd },
  { key: "costPerRequest", label: "$ / request", value: (r) => derived(r).costPerRequest, fmt: fmtUsd },
  { key: "costPer1k", label: "$ / 1K output tokens", value: (r) => derived(r).costPer1kOutput, fmt: fmtUsd },
  // QuotaHeadroomPct's lowest value in the range: what the busiest minute left of the RPM/TPM quota.
  { key: "headroom", label: "Quota headroom", value: (r, span, total, headroom) => headroom.get(r.modelId) ?? null,
    fmt: (v) => (v == null ? "no quota" : `${v.toFixed(1)}%`), worse: "low", optional: true },
];
const HEADROOM_NOTE = "Quota headroom: the lowest QuotaHeadroomPct in the range, what the busiest minute left of the "
  + "model's requests- and tokens-per-minute quota (quotas.json; dashcam quotas set MODEL --rpm N --tpm N).";

export function mount(root, ctx) {
  const tableBox = h("div", { class: "card table-card" });
  const latencyChart = h("div", { class: "chart", "data-chart": "latency" });
  const costChart = h("div", { class: "chart", "data-chart": "cost-per-1k" });
  const ratesChart = h("div", { class: "chart", "data-chart": "rates" });
  const note = h("p", { class: "page-note" });
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Models")),
    note,
    tableBox,
    h("section", { class: "charts three" },
      card("Latency percentiles", latencyChart),
      card("Error and throttle rates", ratesChart),
      card("Cost per 1K output tokens", costChart)),
  );
  let controller = null;
  let sortKey = "requests";
  let descending = true;
  let lastRows = [];
  let lastSpan = 1;
  let lastHeadroom = new Map();

  async function reload() {
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    if (!lastRows.length) show(tableBox, loading("Comparing models…"));
    try {
      const range = await ctx.resolveRange(signal);
      const result = await ctx.runQuery(`stats ${METRICS} by modelId | sort requests desc`,
        { start: range.start, end: range.end, signal, limit: 1000 });
      lastHeadroom = await quotaHeadroom(ctx, result.rows.map((r) => r.modelId), range, signal);
      note.textContent = `${range.label}. Error rate excludes throttling, which has its own rate. `
        + `Select a model to see it on the Overview. ${lastHeadroom.size ? HEADROOM_NOTE
          : "No model has a quota set, so there is no quota headroom (dashcam quotas set MODEL --rpm N --tpm N)."}`;
      lastRows = result.rows;
      lastSpan = range.spanMs;
      if (!lastRows.length) {
        show(tableBox, empty("No invocations in this range.", " ",
          h("a", { href: ctx.pageUrl("/models", { range: "all" }), "data-nav": true }, "Show all data")));
      } else drawTable();
      drawCharts(lastRows, { latencyChart, ratesChart, costChart });
    } catch (error) {
      if (!quiet(error)) show(tableBox, failure(error));
    }
  }

  function drawTable() {
    const total = lastRows.reduce((sum, r) => sum + r.requests, 0);
    const colour = new Map(lastRows.map((r, i) => [r.modelId, colorFor(i)]));
    // A column only some setups have (quota headroom) is shown when some model has a value.
    const columns = COLUMNS.filter((c) => !c.optional || lastHeadroom.size);
    const values = lastRows.map((row) => ({ row, cells: columns.map((c) => c.value(row, lastSpan, total, lastHeadroom)) }));
    const index = Math.max(0, columns.findIndex((c) => c.key === sortKey));
    values.sort((a, b) => {
      const x = a.cells[index] ?? -Infinity;
      const y = b.cells[index] ?? -Infinity;
      return (x - y) * (descending ? -1 : 1);
    });
    // The worst value of a "worse" column is flagged, so outliers stand out.
    const worst = columns.map((c, i) => {
      if (!c.worse) return null;
      const present = values.map((v) => v.cells[i]).filter((v) => v != null);
      if (!present.length) return null;
      return c.worse === "low" ? Math.min(...present) : Math.max(...present);
    });
    const head = h("tr", {}, h("th", { scope: "col" }, "Model"), columns.map((c) => {
      const th = h("th", { scope: "col", class: "num", "aria-sort": c.key === sortKey ? (descending ? "descending" : "ascending") : null });
      th.append(h("button", { type: "button", class: "sort", onclick: () => {
        descending = c.key === sortKey ? !descending : true;
        sortKey = c.key;
        drawTable();
      } }, c.label));
      return th;
    }));
    const body = values.map(({ row, cells }) => h("tr", {},
      h("th", { scope: "row", class: "model", title: row.modelId },
        h("span", { class: "swatch", style: `background:${colour.get(row.modelId)}` }),
        h("a", { href: ctx.pageUrl("/", { model: row.modelId }), "data-nav": true }, modelLabel(row.modelId))),
      cells.map((v, i) => h("td", { class: `num${isWorst(columns[i], v, worst[i], lastRows.length) ? " worst" : ""}`,
        "data-column": columns[i].key }, columns[i].fmt(v)))));
    show(tableBox, h("div", { class: "table-wrap" },
      h("table", { class: "results models-table" }, h("thead", {}, head), h("tbody", {}, body))));
  }

  reload();
  return {
    reload,
    dispose() {
      controller?.abort();
      [latencyChart, ratesChart, costChart].forEach(purge);
    },
  };
}

/** Whether v is the column's worst value worth flagging (a headroom is flagged only when it is tight). */
function isWorst(column, v, worst, models) {
  if (worst == null || v !== worst) return false;
  if (column.worse === "low") return v < 20;
  return models > 1 && v > 0;
}

/**
 * The lowest QuotaHeadroomPct in the range by model (models without a quota have none), from one
 * GetMetricData-like request; periods of about 1/100 of the range, at least a minute.
 */
async function quotaHeadroom(ctx, models, range, signal) {
  const headroom = new Map();
  if (!models.length) return headroom;
  const period = Math.max(60, Math.ceil(range.spanMs / 100 / 60_000) * 60);
  let answer;
  try {
    answer = await ctx.api("/api/v1/metrics", { method: "POST", signal, body: {
      start: String(Math.floor(range.start)), end: String(Math.floor(range.end)),
      queries: models.map((model, i) => ({ id: `h${i}`, metricStat: { metricName: "QuotaHeadroomPct", stat: "Minimum",
        period, dimensions: { ModelId: model } } })) } });
  } catch (error) {
    if (error.name === "AbortError" || error.quiet) throw error;
    return headroom; // a server without quota metrics: the column stays away
  }
  for (const result of answer.results) {
    if (result.values.length) headroom.set(models[Number(result.id.slice(1))], Math.min(...result.values));
  }
  return headroom;
}

const chartHeight = (models) => Math.max(220, 90 + models * 48);

function drawCharts(rows, { latencyChart, ratesChart, costChart }) {
  const labels = rows.map((r) => modelLabel(r.modelId));
  barChart(latencyChart, {
    unit: "ms",
    groups: rows.length ? [["p50", "#93c5fd"], ["p90", "#3b82f6"], ["p99", "#1e3a8a"]].map(([key, color]) => ({
      name: key, color, x: labels, y: rows.map((r) => r[key]) })) : [],
    height: chartHeight(rows.length),
    horizontal: true,
  });
  barChart(ratesChart, {
    unit: "pct",
    groups: rows.length ? [
      { name: "Error rate", color: "#dc2626", x: labels, y: rows.map((r) => (derived(r).errorRate ?? 0) * 100) },
      { name: "Throttle rate", color: "#ea580c", x: labels, y: rows.map((r) => (derived(r).throttleRate ?? 0) * 100) },
    ] : [],
    height: chartHeight(rows.length),
    horizontal: true,
  });
  const priced = rows.filter((r) => derived(r).costPer1kOutput != null);
  barChart(costChart, {
    unit: "usd",
    groups: priced.length ? [{ name: "$ / 1K output tokens", color: "#16a34a", x: priced.map((r) => modelLabel(r.modelId)),
      y: priced.map((r) => derived(r).costPer1kOutput) }] : [],
    height: chartHeight(rows.length),
    horizontal: true,
  });
}
