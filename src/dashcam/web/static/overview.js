// Overview: headline numbers with their change against the previous period, the four core
// questions answered, and every metric as a chart over time by model.

import { pickBin, purge, timeChart } from "./charts.js";
import {
  colorFor, fmtCompact, fmtInt, fmtMs, fmtPct, fmtUsd, h, localTime, modelLabel, parseResultTime, spanWords,
} from "./format.js";
import { METRICS, derived, modelFilter, modelsInRange } from "./metrics.js";
import { resultTable } from "./table.js";
import { card, empty, failure, loading, quiet, show } from "./ui.js";

export const TITLE = "Overview";

// The headline tiles: value from the totals row; `worse` says which way is bad (colours the change).
const TILES = [
  { key: "requests", label: "Requests", value: (t) => t.requests, fmt: fmtInt, change: "relative" },
  { key: "perMinute", label: "Requests / min", value: (t, span) => (t.requests / span) * 6e4, fmt: fmtCompact, change: "relative" },
  { key: "errorRate", label: "Error rate", value: (t) => derived(t).errorRate, fmt: (v) => fmtPct(v), change: "points", worse: "up" },
  { key: "throttleRate", label: "Throttle rate", value: (t) => derived(t).throttleRate, fmt: (v) => fmtPct(v), change: "points", worse: "up" },
  { key: "p50", label: "Latency p50", value: (t) => t.p50, fmt: fmtMs, change: "relative", worse: "up" },
  { key: "p90", label: "Latency p90", value: (t) => t.p90, fmt: fmtMs, change: "relative", worse: "up" },
  { key: "p99", label: "Latency p99", value: (t) => t.p99, fmt: fmtMs, change: "relative", worse: "up" },
  { key: "ttft50", label: "TTFT p50", value: (t) => t.ttft50, fmt: fmtMs, change: "relative", worse: "up" },
  { key: "inputTokens", label: "Input tokens", value: (t) => t.inputTokens, fmt: fmtCompact, change: "relative" },
  { key: "outputTokens", label: "Output tokens", value: (t) => t.outputTokens, fmt: fmtCompact, change: "relative" },
  { key: "cost", label: "Cost", value: (t) => t.cost, fmt: fmtUsd, change: "relative" },
];

// The charts: per bin and model, a value from the series row (null leaves a gap).
const CHARTS = [
  { key: "requests", title: "Requests per minute", unit: "rate", kind: "area", fill: 0,
    value: (r, binMs) => (r.requests / binMs) * 6e4 },
  { key: "errorRate", title: "Error rate (not throttling)", unit: "pct", value: (r) => pctOrNull(derived(r).errorRate) },
  { key: "throttleRate", title: "Throttle rate", unit: "pct", value: (r) => pctOrNull(derived(r).throttleRate) },
  { key: "p50", title: "Latency p50", unit: "ms", value: (r) => r.p50 },
  { key: "p90", title: "Latency p90", unit: "ms", value: (r) => r.p90 },
  { key: "p99", title: "Latency p99", unit: "ms", value: (r) => r.p99 },
  { key: "ttft50", title: "Time to first token p50 (streaming)", unit: "ms", value: (r) => r.ttft50 },
  { key: "inputTokens", title: "Input tokens", unit: "int", kind: "bar", fill: 0, value: (r) => r.inputTokens },
  { key: "outputTokens", title: "Output tokens", unit: "int", kind: "bar", fill: 0, value: (r) => r.outputTokens },
  { key: "cost", title: "Cost (USD)", unit: "usd", kind: "bar", fill: 0, value: (r) => r.cost },
];

// The four core questions, with the saved query each runs (from /api/v1/saved-queries).
const QUESTIONS = [
  { key: "throttles", title: "Are we hitting limits?" },
  { key: "slowest", title: "Is the model slow?" },
  { key: "tokens", title: "Are we using too many tokens?" },
  { key: "traffic", title: "Is traffic peaking?" },
];

const pctOrNull = (fraction) => (fraction == null ? null : fraction * 100);

export function mount(root, ctx) {
  const filterBox = h("div", { class: "model-filter" });
  const tiles = h("section", { class: "tiles", "aria-label": "Headline numbers" });
  const questions = h("section", { class: "questions", "aria-label": "Core questions" });
  const legend = h("div", { class: "legend-strip", "aria-label": "Models on the charts" });
  const charts = h("section", { class: "charts", "aria-label": "Charts over time" });
  const note = h("p", { class: "page-note" });
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Overview"), filterBox),
    note, tiles, questions, legend, charts,
  );
  const chartEls = {};
  for (const spec of CHARTS) {
    chartEls[spec.key] = h("div", { class: "chart", "data-chart": spec.key });
    charts.append(card(spec.title, chartEls[spec.key]));
  }
  let controller = null;
  let savedQueries = null;

  async function reload() {
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    const firstLoad = !tiles.children.length;
    if (firstLoad) {
      show(tiles, loading("Loading headline numbers…"));
      show(questions, QUESTIONS.map((q) => card(q.title, loading())));
    }
    try {
      const range = await ctx.resolveRange(signal);
      const selected = ctx.currentParams().getAll("model");
      const [models, queries] = await Promise.all([
        modelsInRange(ctx, range, signal),
        savedQueries || ctx.api("/api/v1/saved-queries", { signal }),
      ]);
      savedQueries = queries;
      drawFilter(filterBox, models, selected, ctx, reload);
      const filter = modelFilter(selected.filter((m) => models.includes(m)).length ? selected : []);
      const bin = pickBin(range.spanMs);
      const alignedStart = Math.floor(range.start / bin.ms) * bin.ms;
      const previous = { start: range.start - range.spanMs, end: range.start };
      const run = (text, r, limit = 10000) => ctx.runQuery(text, { start: r.start, end: r.end, limit, signal });
      const [current, before, series, ...answers] = await Promise.all([
        run(`${filter}stats ${METRICS}`, range),
        run(`${filter}stats ${METRICS}`, previous),
        run(`${filter}stats ${METRICS} by bin(${bin.text}) as t, modelId`, { start: alignedStart, end: range.end }),
        ...QUESTIONS.map((q) => run(filter + queryText(savedQueries, q.key), range, 5)),
      ]);
      const totals = current.rows[0] || { requests: 0 };
      const span = range.kind === "absolute" ? `${spanWords(range.spanMs)} from ${localTime(range.start)}`
        : `${range.label} (${localTime(range.start)} → ${localTime(range.end)})`;
      note.textContent = `${span}. Changes are against the ${spanWords(range.spanMs)} before; charts use ${bin.text} bins.`;
      if (!totals.requests) {
        show(tiles, empty("No invocations in this range.", " ", latestDataHint(ctx)));
        show(questions);
        show(legend);
        for (const spec of CHARTS) drawChart(chartEls[spec.key], spec, [], models, bin, alignedStart, range.end);
        return;
      }
      drawLegend(legend, models.filter((m) => series.rows.some((r) => r.modelId === m)), models);
      drawTiles(tiles, totals, before.rows[0] || { requests: 0 }, range.spanMs);
      drawQuestions(questions, ctx, savedQueries, filter, answers, totals, series.rows, range);
      for (const spec of CHARTS) drawChart(chartEls[spec.key], spec, series.rows, models, bin, alignedStart, range.end);
    } catch (error) {
      if (quiet(error)) return;
      show(tiles, failure(error));
    }
  }

  reload();
  return {
    reload,
    dispose() {
      controller?.abort();
      Object.values(chartEls).forEach(purge);
    },
  };
}

function queryText(saved, key) {
  return saved.find((q) => q.key === key)?.text || "";
}

function latestDataHint(ctx) {
  return h("a", { href: ctx.pageUrl(location.pathname, { range: "all" }), "data-nav": true }, "Show all data");
}

function drawFilter(box, models, selected, ctx, reload) {
  const chosen = new Set(selected);
  const summary = h("summary", {}, chosen.size ? `Models: ${chosen.size} of ${models.length}` : `Models: all ${models.length}`);
  const list = h("div", { class: "dropdown-body", role: "group", "aria-label": "Models" });
  const apply = () => {
    ctx.setParams({ model: [...chosen] }, { push: true });
    reload();
  };
  list.append(h("button", { type: "button", class: "secondary small", onclick: () => { chosen.clear(); apply(); } }, "All models"));
  models.forEach((model, i) => {
    const box = h("input", { type: "checkbox", value: model, checked: chosen.has(model) });
    box.addEventListener("change", () => {
      if (box.checked) chosen.add(model);
      else chosen.delete(model);
      apply();
    });
    list.append(h("label", { class: "check", title: model }, box, h("span", { class: "swatch", style: `background:${colorFor(i)}` }), modelLabel(model)));
  });
  const open = box.querySelector("details")?.open;
  box.replaceChildren(h("details", { class: "dropdown", open }, summary, list));
}

/** One legend for every chart: each model keeps its colour across them. */
function drawLegend(el, shown, models) {
  show(el, h("span", { class: "legend-title" }, "Models"), shown.map((model) => h("span", { class: "legend-item", title: model },
    h("span", { class: "swatch", style: `background:${colorFor(models.indexOf(model))}` }), modelLabel(model))));
}

function drawTiles(el, totals, before, spanMs) {
  const tiles = TILES.map((tile) => {
    const value = tile.value(totals, spanMs);
    const was = before.requests ? tile.value(before, spanMs) : null;
    return h("div", { class: "tile", "data-tile": tile.key },
      h("div", { class: "tile-label" }, tile.label),
      h("div", { class: "tile-value" }, tile.fmt(value)),
      changeBadge(tile, value, was));
  });
  show(el, tiles);
}

function changeBadge(tile, value, was) {
  if (value == null || was == null) return h("div", { class: "tile-change none" }, "no previous data");
  let text;
  let delta;
  if (tile.change === "points") {
    delta = (value - was) * 100;
    text = `${delta >= 0 ? "+" : "−"}${Math.abs(delta).toFixed(2)} pp`;
  } else {
    if (!was) return h("div", { class: "tile-change none" }, "new this period");
    delta = (value - was) / was;
    text = delta >= 9 ? `×${fmtCompact(value / was)}` : `${delta >= 0 ? "+" : "−"}${Math.abs(delta * 100).toFixed(1)}%`;
  }
  const flat = Math.abs(delta) < 1e-9;
  const arrow = flat ? "→" : delta > 0 ? "▲" : "▼";
  let tone = "neutral";
  if (tile.worse && !flat) tone = (delta > 0) === (tile.worse === "up") ? "bad" : "good";
  return h("div", { class: `tile-change ${tone}`, title: `Previous period: ${tile.fmt(was)}`, "aria-label": `${text} against the previous period (${tile.fmt(was)})` }, `${arrow} ${text}`);
}

function drawQuestions(el, ctx, saved, filter, answers, totals, seriesRows, range) {
  const byModel = sumBy(seriesRows, "modelId", ["throttles", "outputTokens", "requests"]);
  const cards = QUESTIONS.map((question, i) => {
    const result = answers[i];
    const text = filter + queryText(saved, question.key);
    const summary = answer(question.key, result.rows, totals, byModel, range);
    const link = h("a", { href: ctx.pageUrl("/query", { q: text }), "data-nav": true, class: "more-link" }, "Open in Query →");
    return h("section", { class: "card question", "data-question": question.key },
      h("h2", {}, question.title),
      h("p", { class: `answer ${summary.tone || ""}` }, summary.text),
      result.rows.length ? resultTable(result.columns, result.rows, { limit: 5, compact: true }) : empty("No rows."),
      link);
  });
  show(el, cards);
}

function sumBy(rows, key, fields) {
  const sums = new Map();
  for (const row of rows) {
    const entry = sums.get(row[key]) || Object.fromEntries(fields.map((f) => [f, 0]));
    for (const f of fields) entry[f] += row[f] || 0;
    sums.set(row[key], entry);
  }
  return sums;
}

function top(map, field) {
  let best = null;
  for (const [key, value] of map) if (!best || value[field] > best[1][field]) best = [key, value];
  return best;
}

/** A one-sentence answer to a core question from the numbers already loaded. */
function answer(key, rows, totals, byModel, range) {
  const d = derived(totals);
  if (key === "throttles") {
    if (!d.throttles) return { text: "No: nothing was throttled in this range.", tone: "good" };
    const [model, worst] = top(byModel, "throttles");
    return { tone: "bad", text: `Yes: ${fmtInt(d.throttles)} requests were throttled (${fmtPct(d.throttleRate)}), `
      + `${fmtInt(worst.throttles)} of them on ${modelLabel(model)}.` };
  }
  if (key === "slowest") {
    const slowest = rows[0];
    const tail = slowest ? ` The slowest took ${fmtMs(slowest.latencyMs)} (${modelLabel(slowest.modelId)}).` : "";
    return { text: `Half of the requests finished within ${fmtMs(totals.p50)}, 99% within ${fmtMs(totals.p99)}.${tail}` };
  }
  if (key === "tokens") {
    const [model, most] = top(byModel, "outputTokens") || [null, { outputTokens: 0 }];
    const share = totals.outputTokens ? most.outputTokens / totals.outputTokens : 0;
    return { text: `${fmtCompact(totals.inputTokens)} input and ${fmtCompact(totals.outputTokens)} output tokens `
      + `(${fmtUsd(totals.cost)}); ${modelLabel(model)} wrote ${fmtPct(share, 0)} of the output.` };
  }
  const busiest = rows[0];
  const average = (totals.requests / range.spanMs) * 6e4;
  if (!busiest) return { text: "No traffic in this range." };
  const ratio = average ? busiest.requests / average : 0;
  return { tone: ratio >= 2 ? "bad" : "", text: `Busiest minute: ${fmtInt(busiest.requests)} requests at `
    + `${localTime(parseResultTime(busiest.minute), { seconds: false })}, ${ratio.toFixed(1)}× the average of ${fmtCompact(average)}/min.` };
}

function drawChart(el, spec, rows, models, bin, start, end) {
  const byModel = new Map();
  for (const row of rows) {
    if (!byModel.has(row.modelId)) byModel.set(row.modelId, new Map());
    byModel.get(row.modelId).set(parseResultTime(row.t), row);
  }
  const grid = [];
  for (let t = start; t < end; t += bin.ms) grid.push(t);
  const order = [...byModel.keys()].sort((a, b) => models.indexOf(a) - models.indexOf(b));
  const series = order.flatMap((model) => {
    const points = byModel.get(model);
    const y = grid.map((t) => {
      const row = points.get(t);
      if (!row) return spec.fill ?? null;
      const value = spec.value(row, bin.ms);
      return value ?? spec.fill ?? null;
    });
    // A model that never has this metric (no streaming calls: no time to first token) is left out.
    if (y.every((v) => v == null)) return [];
    return [{ name: modelLabel(model), color: colorFor(Math.max(0, models.indexOf(model))), x: grid, y }];
  });
  timeChart(el, { series, unit: spec.unit, kind: spec.kind || "line", binMs: bin.ms, legend: false, height: 230 });
}
