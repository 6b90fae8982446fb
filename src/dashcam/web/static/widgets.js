// Dashboard widgets drawn from their resolved data (POST /api/v1/dashboards/{name}/widgets/{i}/data
// or /api/v1/widgets/data; the shape is in docs/dashboards.md): metric charts, single numbers,
// gauges, bars, pies and tables; Logs Insights tables and charts; Markdown text; alarm states.

import { statePill } from "./alarmtext.js";
import { barChart, baseLayout, CONFIG, scaleFor, timeChart } from "./charts.js";
import { colorFor, fmtCompact, fmtMs, fmtPct, fmtUsd, h, localTime, modelLabel } from "./format.js";
import { metricUnit } from "./metrics.js";
import { resultTable } from "./table.js";
import { empty } from "./ui.js";

// Bedrock model ARNs inside a label (a log widget's "requests arn:...:inference-profile/us.x") shortened to the model.
const MODEL_ARN = /arn:aws[a-z-]*:bedrock:[^\s/]*\//g;
const shortLabel = (text) => modelLabel(String(text ?? "")).replace(MODEL_ARN, "");

// The grid: 24 columns; a height unit is ROW_PX tall, with GAP_PX between units.
export const GRID_COLUMNS = 24;
export const ROW_PX = 40;
export const GAP_PX = 10;
const FRAME_CHROME_PX = 44; // a widget's title bar and padding

/** The pixel height of a widget `units` tall. */
export function widgetHeight(units) {
  return units * ROW_PX + (units - 1) * GAP_PX;
}

/**
 * Grid places for widgets (as in a body: x, y, width, height, any of x/y may be missing): widgets
 * with a place keep it unless it collides with one placed before (then they move down); widgets
 * without one flow into the first free spot, left to right, top to bottom. Returns [{x, y, width, height}].
 */
export function layOut(widgets) {
  const placed = [];
  const fits = (x, y, w, hgt) => placed.every((p) => x + w <= p.x || p.x + p.width <= x || y + hgt <= p.y || p.y + p.height <= y);
  const order = widgets.map((w, i) => ({ w, i }))
    .sort((a, b) => (a.w.y ?? Infinity) - (b.w.y ?? Infinity) || (a.w.x ?? 0) - (b.w.x ?? 0) || a.i - b.i);
  const places = [];
  for (const { w, i } of order) {
    const width = Math.min(GRID_COLUMNS, Math.max(1, w.width || 6));
    const height = Math.max(1, w.height || 6);
    let x = w.x;
    let y = w.y;
    if (x == null || y == null) {
      // Flow: the first free spot from the top.
      found: for (y = 0; ; y += 1) {
        for (x = 0; x + width <= GRID_COLUMNS; x += 1) if (fits(x, y, width, height)) break found;
      }
    } else {
      x = Math.min(Math.max(0, x), GRID_COLUMNS - width);
      while (!fits(x, y, width, height)) y += 1;
    }
    const place = { x, y, width, height };
    placed.push(place);
    places[i] = place;
  }
  return places;
}

/** A widget's title: its own, else what it shows. */
export function widgetTitle(widget) {
  const p = widget.properties || {};
  if (p.title) return p.title;
  if (widget.type === "text") return "";
  if (widget.type === "log") return "Logs Insights";
  if (widget.type === "alarm") return "Alarms";
  const first = (p.metrics || [])[0];
  if (Array.isArray(first) && typeof first[1] === "string") return first[1];
  return widget.type;
}

/** Draw resolved widget `data` into `el` (the widget's body), `units` grid rows tall. */
export async function drawWidget(el, data, { ctx, units }) {
  const height = Math.max(60, widgetHeight(units) - FRAME_CHROME_PX);
  el.replaceChildren();
  el.dataset.status = data.status;
  if (data.status === "error") {
    el.append(h("div", { class: "state failure", role: "alert" }, (data.messages || []).map((m) => m.message || m).join("; ") || "This widget could not be drawn."));
    return;
  }
  if (data.status === "unsupported") {
    el.append(empty(`dashcam does not draw "${data.type}" widgets; the widget is kept in the body as it is.`));
    return;
  }
  if (data.type === "text") return drawText(el, data, ctx);
  if (data.type === "alarm") return drawAlarms(el, data, ctx);
  if (data.type === "log") return drawLog(el, data, height);
  return drawMetric(el, data, height);
}

// ---------------------------------------------------------------------------- text and alarms

async function drawText(el, data, ctx) {
  el.classList.toggle("transparent", data.background === "transparent");
  const answer = await ctx.api("/api/v1/markdown", { method: "POST", body: { markdown: data.markdown || "" } });
  // Safe: the server renders with raw HTML escaped and unsafe link schemes refused.
  el.append(h("div", { class: "markdown", html: answer.html }));
}

function drawAlarms(el, data, ctx) {
  const alarms = data.alarms || [];
  if (!alarms.length) {
    el.append(empty("None of these alarms exists."));
    return;
  }
  el.append(h("ul", { class: "alarm-list" }, alarms.map((a) => h("li", {}, statePill(a.state), " ",
    h("a", { href: ctx.pageUrl("/alarm", { name: a.name }), "data-nav": true }, a.name)))));
}

// ---------------------------------------------------------------------------- metric widgets

/** The chart unit of a widget's series: their metrics' when every series shows a metric of one unit. */
function seriesUnit(series) {
  const units = new Set(series.map((s) => (s.metric?.metricName ? metricUnit(s.metric.metricName) : null)));
  return units.size === 1 && !units.has(null) ? [...units][0] : "num";
}

/**
 * A legend drawn in HTML under (or beside) the chart, so many long labels never squeeze the plot:
 * it wraps and scrolls within its own box. Clicking an entry hides or shows its line.
 * Returns the pixel height the chart keeps.
 */
function htmlLegend(el, chart, traces, height, position) {
  if (position === "hidden" || !traces.length) return height;
  const items = traces.map((t, i) => {
    const item = h("button", { type: "button", class: "legend-item", title: t.fullName || t.name, "aria-pressed": "true" },
      h("span", { class: "swatch", style: `background:${t.line?.color || t.marker?.color}` }), h("span", { class: "label" }, t.name));
    item.addEventListener("click", () => {
      const shown = item.getAttribute("aria-pressed") === "true";
      item.setAttribute("aria-pressed", String(!shown));
      window.Plotly.restyle(chart, { visible: shown ? "legendonly" : true }, [i]);
    });
    return item;
  });
  const legend = h("div", { class: `widget-legend ${position === "right" ? "right" : "bottom"}` }, items);
  if (position === "right") {
    el.classList.add("legend-right");
    el.append(legend);
    return height;
  }
  el.append(legend);
  return Math.max(60, height - Math.min(legend.offsetHeight || 20, Math.floor(height / 3)) - 4);
}

function formatValue(value, unit) {
  if (value == null) return "–";
  if (unit === "ms") return fmtMs(value);
  if (unit === "usd") return fmtUsd(value);
  if (unit === "pct") return fmtPct(value / 100);
  return fmtCompact(value);
}

function drawMetric(el, data, height) {
  const series = data.series || [];
  const props = data.properties || {};
  const view = data.view || "timeSeries";
  if (view === "timeSeries") return metricChart(el, data, series, props, height);
  const values = data.values || [];
  if (!values.length) {
    el.append(empty("No data in this range."));
    return;
  }
  const unitOf = (id) => seriesUnit(series.filter((s) => s.id === id));
  if (view === "singleValue") return singleValues(el, values, series, unitOf, props);
  if (view === "table") {
    el.append(h("div", { class: "table-wrap" }, h("table", { class: "results" }, h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Label"), h("th", { scope: "col", class: "num" }, "Value"))),
    h("tbody", {}, values.map((v) => h("tr", {}, h("td", { title: v.label }, modelLabel(v.label)),
      h("td", { class: "num" }, formatValue(v.value, unitOf(v.id)))))))));
    return;
  }
  const chart = h("div", { class: "chart", "data-chart": "widget" });
  el.append(chart);
  if (view === "gauge") return gauge(chart, values[0], unitOf(values[0].id), props, height);
  if (view === "pie") return pie(chart, values.map((v) => modelLabel(v.label)), values.map((v) => v.value), height);
  barChart(chart, { unit: seriesUnit(series), height, horizontal: true,
    groups: [{ name: "latest", color: colorFor(0), x: values.map((v) => modelLabel(v.label)), y: values.map((v) => v.value) }] });
}

function singleValues(el, values, series, unitOf, props) {
  const tiles = values.map((v, i) => {
    const tile = h("div", { class: "tile single", "data-value": v.label },
      h("div", { class: "tile-label", title: v.label }, modelLabel(v.label)),
      h("div", { class: "tile-value" }, formatValue(v.value, unitOf(v.id))));
    const line = series.find((s) => s.id === v.id);
    if (props.sparkline && line && line.values.length > 1) tile.append(sparkline(line.values, colorFor(i)));
    return tile;
  });
  el.append(h("div", { class: "tiles compact single-values" }, tiles));
}

function sparkline(values, color) {
  const w = 120;
  const hgt = 24;
  const max = Math.max(...values);
  const min = Math.min(...values);
  const points = values.map((v, i) => `${(i / (values.length - 1)) * w},${hgt - ((v - min) / (max - min || 1)) * hgt}`);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("class", "sparkline");
  svg.setAttribute("aria-hidden", "true");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", color);
  line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  return svg;
}

function metricChart(el, data, series, props, height) {
  const chart = h("div", { class: "chart", "data-chart": "widget" });
  el.append(chart);
  const unit = seriesUnit(series);
  const left = series.filter((s) => s.yAxis !== "right");
  const right = series.filter((s) => s.yAxis === "right");
  const spec = scaleFor(unit, Math.max(0, ...left.flatMap((s) => s.values)));
  const scale = (list, factor) => (factor === 1 ? list : list.map((v) => (v == null ? v : v * factor)));
  const rightSpec = scaleFor(unit, Math.max(0, ...right.flatMap((s) => s.values)));
  const stacked = props.stacked === true;
  const traces = series.map((s, i) => {
    const onRight = s.yAxis === "right";
    const own = onRight ? rightSpec : spec;
    const color = s.color || colorFor(i);
    return {
      type: "scatter", mode: s.timestamps.length < 3 ? "lines+markers" : "lines", name: shortLabel(s.label), fullName: s.label,
      x: s.timestamps.map((t) => localTime(t)), y: scale(s.values, own.factor), yaxis: onRight ? "y2" : "y",
      line: { color, width: stacked ? 0.8 : 1.6 }, marker: { color }, stackgroup: stacked && !onRight ? "left" : undefined,
      hovertemplate: `%{y:${own.hover}}${own.suffix || ""}`,
    };
  });
  const chartHeight = htmlLegend(el, chart, traces, height, props.legend?.position || "bottom");
  const layout = baseLayout(spec, { height: chartHeight, legend: false });
  layout.xaxis.range = [localTime(data.start), localTime(data.end)];
  applyAxis(layout.yaxis, props.yAxis?.left, spec.factor);
  if (right.length) {
    layout.yaxis2 = { overlaying: "y", side: "right", rangemode: "tozero", showgrid: false, tickformat: rightSpec.tickformat,
      ticksuffix: rightSpec.ticksuffix || "", automargin: true, fixedrange: true };
    applyAxis(layout.yaxis2, props.yAxis?.right, rightSpec.factor);
  }
  addAnnotations(layout, props.annotations, spec.factor);
  if (!series.some((s) => s.timestamps.length)) noData(layout);
  window.Plotly.react(chart, traces, layout, CONFIG);
}

function applyAxis(axis, options, factor) {
  if (!options) return;
  const min = options.min != null ? options.min * factor : null;
  const max = options.max != null ? options.max * factor : null;
  // plotly.js autoscales the end of the axis a widget leaves open.
  if (min != null && max != null) Object.assign(axis, { autorange: false, range: [min, max] });
  else if (min != null) Object.assign(axis, { autorange: "max", range: [min, null] });
  else if (max != null) Object.assign(axis, { autorange: "min", range: [null, max] });
  if (options.label) axis.title = { text: options.label, font: { size: 11 } };
}

/** Horizontal lines and bands (CloudWatch's annotations.horizontal) and vertical lines. */
function addAnnotations(layout, annotations, factor) {
  layout.shapes = layout.shapes || [];
  layout.annotations = layout.annotations || [];
  for (const item of annotations?.horizontal || []) {
    const pair = Array.isArray(item) ? item : [item];
    if (pair.some((a) => a.visible === false)) continue;
    const color = pair[0].color || "#dc2626";
    const yref = pair[0].yAxis === "right" ? "y2" : "y";
    if (pair.length === 2) {
      layout.shapes.push({ type: "rect", xref: "paper", x0: 0, x1: 1, yref, y0: pair[0].value * factor, y1: pair[1].value * factor,
        fillcolor: color, opacity: 0.12, line: { width: 0 }, layer: "below" });
    } else {
      layout.shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, yref, y0: item.value * factor, y1: item.value * factor,
        line: { color, width: 1.4, dash: "dash" } });
    }
    if (pair[0].label) {
      layout.annotations.push({ xref: "paper", x: 1, xanchor: "right", yref, y: pair[pair.length - 1].value * factor,
        yanchor: "bottom", showarrow: false, text: pair[0].label, font: { size: 10, color } });
    }
  }
  for (const item of annotations?.vertical || []) {
    const list = Array.isArray(item) ? item : [item];
    for (const a of list) {
      const t = Date.parse(a.value);
      if (Number.isNaN(t) || a.visible === false) continue;
      layout.shapes.push({ type: "line", yref: "paper", y0: 0, y1: 1, xref: "x", x0: localTime(t), x1: localTime(t),
        line: { color: a.color || "#6b7280", width: 1.2, dash: "dot" } });
    }
  }
}

function noData(layout) {
  layout.annotations = [...(layout.annotations || []), { text: "No data in this range", showarrow: false, xref: "paper",
    yref: "paper", x: 0.5, y: 0.5, font: { size: 13, color: "#6b7280" } }];
}

function gauge(chart, value, unit, props, height) {
  const axis = props.yAxis?.left || {};
  const max = axis.max ?? (unit === "pct" ? 100 : Math.max(1, (value.value || 0) * 1.5));
  const data = [{ type: "indicator", mode: "gauge+number", value: value.value,
    number: { valueformat: unit === "usd" ? "$,.2f" : ",.4~g", suffix: unit === "ms" ? " ms" : unit === "pct" ? "%" : "" },
    title: { text: modelLabel(value.label), font: { size: 12 } },
    gauge: { axis: { range: [axis.min ?? 0, max] }, bar: { color: colorFor(0) } } }];
  window.Plotly.react(chart, data, { height, margin: { l: 24, r: 24, t: 36, b: 8 }, paper_bgcolor: "rgba(0,0,0,0)",
    font: { family: "system-ui, sans-serif", size: 11 } }, CONFIG);
}

function pie(chart, labels, values, height) {
  const data = [{ type: "pie", labels, values, hole: 0.45, sort: false, textinfo: "percent", textposition: "inside",
    marker: { colors: labels.map((_, i) => colorFor(i)) }, hovertemplate: "%{label}: %{value:,.4~g} (%{percent})<extra></extra>" }];
  // A narrow widget puts its legend under the pie, so the pie keeps its size.
  const narrow = chart.clientWidth > 0 && chart.clientWidth < 520;
  const legend = narrow ? { font: { size: 10 }, orientation: "h", y: -0.05, yanchor: "top" } : { font: { size: 10 } };
  window.Plotly.react(chart, data, { height, margin: { l: 8, r: 8, t: 8, b: 8 }, paper_bgcolor: "rgba(0,0,0,0)",
    showlegend: true, legend, font: { family: "system-ui, sans-serif", size: 11 } }, CONFIG);
}

// ---------------------------------------------------------------------------- log widgets

function drawLog(el, data, height) {
  const view = data.view || "table";
  const rows = data.rows || [];
  if (!rows.length) {
    el.append(empty("No rows in this range."));
    return;
  }
  if (view === "table" || !(data.series || []).length) {
    el.append(resultTable(data.columns, rows, { limit: 200, sortable: true }));
    return;
  }
  const chart = h("div", { class: "chart", "data-chart": "widget" });
  el.append(chart);
  const series = data.series;
  if (view === "timeSeries") {
    const lines = series.map((s, i) => ({ name: shortLabel(s.label), fullName: s.label, color: colorFor(i), x: s.timestamps, y: s.values }));
    const chartHeight = htmlLegend(el, chart, lines.map((l) => ({ ...l, line: { color: l.color } })), height,
      lines.length > 1 ? "bottom" : "hidden");
    timeChart(chart, { height: chartHeight, kind: data.properties?.stacked ? "area" : "line", unit: "num", legend: false, series: lines });
    return;
  }
  if (view === "pie") return pie(chart, series[0].categories.map(modelLabel), series[0].values, height);
  barChart(chart, { unit: "num", height, horizontal: true,
    groups: series.map((s, i) => ({ name: s.label, color: colorFor(i), x: s.categories.map(modelLabel), y: s.values })) });
}
