// Charts drawn with plotly.js (served from the installed plotly package, see web/routes.py).

import { localTime } from "./format.js";

export const CONFIG = {
  displaylogo: false,
  responsive: true,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
  toImageButtonOptions: { format: "png", scale: 2 },
};

/**
 * How an axis shows a unit, given the largest value on it: {factor, tickformat, ticksuffix, hover,
 * suffix}. Durations switch to seconds past 2 s; dollars keep cents (or more) when they are small.
 */
export function scaleFor(unit, max) {
  switch (unit) {
    case "ms":
      return max >= 2000
        ? { factor: 1e-3, tickformat: "~g", ticksuffix: " s", hover: ",.2f", suffix: " s" }
        : { factor: 1, tickformat: "~g", ticksuffix: " ms", hover: ",.0f", suffix: " ms" };
    case "pct":
      return { factor: 1, tickformat: ".2~f", ticksuffix: "%", hover: ".2f", suffix: "%" };
    case "usd":
      return { factor: 1, tickformat: max < 0.1 ? "$.4~f" : max < 100 ? "$.2~f" : "$,.0f", hover: "$,.4f" };
    case "rate":
      return { factor: 1, tickformat: "~s", hover: ",.1f" };
    case "num": // any number (metric math, query columns): small ones keep their decimals
      return { factor: 1, tickformat: max >= 1e4 ? "~s" : "~g", hover: ",.4~g" };
    default: // counts: SI suffixes for large ones; small axes may tick at halves, which "~s" writes as "500m"
      return { factor: 1, tickformat: max >= 1000 ? "~s" : "~g", hover: ",.0f" };
  }
}

function largest(arrays) {
  let max = 0;
  for (const values of arrays) for (const v of values) if (v != null && v > max) max = v;
  return max;
}

const scaled = (values, factor) => (factor === 1 ? values : values.map((v) => (v == null ? v : v * factor)));

export function baseLayout(unit, { height = 260, legend = true } = {}) {
  return {
    height,
    margin: { l: 56, r: 12, t: legend ? 24 : 8, b: 32 },
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11, color: "#1f2937" },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    hovermode: "x unified",
    hoverlabel: { namelength: 40 },
    showlegend: legend,
    // Above the plot: below it, the legend would collide with two-line date ticks.
    legend: { orientation: "h", y: 1.02, yanchor: "bottom", x: 0, font: { size: 10 } },
    xaxis: { type: "date", gridcolor: "#eef0f3", linecolor: "#d1d5db", automargin: true },
    yaxis: { rangemode: "tozero", gridcolor: "#eef0f3", zeroline: false, tickformat: unit.tickformat,
      ticksuffix: unit.ticksuffix || "", automargin: true, fixedrange: true, separatethousands: true },
  };
}

/**
 * A chart over time: series = [{name, color, x: [epoch ms], y: [numbers or null]}].
 * kind: "line" | "area" (stacked) | "bar" (stacked).
 */
export function timeChart(el, { series, unit = "int", kind = "line", height, legend = true, binMs }) {
  const stacked = kind !== "line";
  const spec = scaleFor(unit, stacked ? largest([stackTotals(series)]) : largest(series.map((s) => s.y)));
  const data = series.map((s) => {
    const trace = {
      name: s.name,
      x: s.x.map((ms) => localTime(ms)),
      y: scaled(s.y, spec.factor),
      hovertemplate: `%{y:${spec.hover}}${spec.suffix || ""}`,
      marker: { color: s.color },
      line: { color: s.color, width: 1.6 },
    };
    if (kind === "bar") Object.assign(trace, { type: "bar" });
    else Object.assign(trace, { type: "scatter", mode: s.x.length < 3 ? "lines+markers" : "lines", connectgaps: false });
    if (kind === "area") Object.assign(trace, { stackgroup: "one", line: { color: s.color, width: 0.8 } });
    return trace;
  });
  const layout = baseLayout(spec, { height, legend });
  if (kind === "bar") {
    layout.barmode = "stack";
    layout.bargap = 0.15;
  }
  if (binMs) layout.xaxis.hoverformat = binMs < 60_000 ? "%H:%M:%S" : "%Y-%m-%d %H:%M";
  if (!series.length || series.every((s) => !s.x.length)) emptyNote(layout);
  window.Plotly.react(el, data, layout, CONFIG);
}

/** A bar chart of categories: groups = [{name, color, x: [labels], y: [numbers]}]. */
export function barChart(el, { groups, unit = "int", height = 260, horizontal = false }) {
  const spec = scaleFor(unit, largest(groups.map((g) => g.y)));
  const data = groups.map((g) => ({
    type: "bar",
    name: g.name,
    x: horizontal ? scaled(g.y, spec.factor) : g.x,
    y: horizontal ? g.x : scaled(g.y, spec.factor),
    orientation: horizontal ? "h" : "v",
    marker: { color: g.color },
    hovertemplate: `%{${horizontal ? "y" : "x"}}: %{${horizontal ? "x" : "y"}:${spec.hover}}${spec.suffix || ""}<extra>${g.name}</extra>`,
  }));
  const layout = baseLayout(spec, { height, legend: groups.length > 1 });
  layout.hovermode = "closest";
  layout.barmode = "group";
  layout.xaxis = { type: "category", automargin: true, tickfont: { size: 10 }, fixedrange: true };
  if (horizontal) {
    layout.xaxis = { ...layout.yaxis };
    layout.yaxis = { type: "category", automargin: true, autorange: "reversed", fixedrange: true };
  }
  if (horizontal) layout.margin = { ...layout.margin, t: groups.length > 1 ? 30 : 8, b: 30 };
  if (!groups.length) emptyNote(layout);
  window.Plotly.react(el, data, layout, CONFIG);
}

/** Per-x sums of stacked series (what the top of a stack reaches). */
function stackTotals(series) {
  const totals = [];
  for (const s of series) s.y.forEach((v, i) => { totals[i] = (totals[i] || 0) + (v || 0); });
  return totals;
}

function emptyNote(layout) {
  layout.annotations = [{ text: "No data in this range", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5,
    font: { size: 13, color: "#6b7280" } }];
  layout.xaxis.visible = false;
  layout.yaxis.visible = false;
}

/** Free a chart's resources. */
export function purge(el) {
  if (window.Plotly && el) window.Plotly.purge(el);
}

/** The bin for a span: about 60-120 points; epoch-aligned units bin() accepts. */
export function pickBin(spanMs) {
  const bins = [["10s", 1e4], ["30s", 3e4], ["1m", 6e4], ["2m", 1.2e5], ["5m", 3e5], ["10m", 6e5], ["15m", 9e5],
    ["30m", 1.8e6], ["1h", 3.6e6], ["2h", 7.2e6], ["3h", 1.08e7], ["6h", 2.16e7], ["12h", 4.32e7], ["1d", 8.64e7]];
  for (const [text, ms] of bins) if (spanMs / ms <= 120) return { text, ms };
  return { text: "1d", ms: 8.64e7 };
}
