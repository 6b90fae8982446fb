// The dashboard editor's widget kinds and the form that edits one widget.
//
// Forms cover the common cases (one metric, optionally one line per model, operation, caller or
// app; one Logs Insights query; Markdown). A widget beyond them (several metric rows, metric
// math) keeps its metrics as they are, and the dashboard's JSON editor changes anything.

import { h } from "./format.js";
import { metricDefinitions } from "./metrics.js";

const NAMESPACE = "AWS/Bedrock";
const STATS = ["Sum", "Average", "Minimum", "Maximum", "SampleCount", "p50", "p90", "p99"];
const PERIODS = [[60, "1 minute"], [300, "5 minutes"], [900, "15 minutes"], [3600, "1 hour"], [86400, "1 day"]];
const SPLITS = [["", "All together"], ["ModelId", "One line per model"], ["Operation", "One line per operation"],
  ["Caller", "One line per caller"], ["App", "One line per app"]];
const CHART_VIEWS = [["timeSeries", "Lines over time"], ["stacked", "Stacked areas over time"], ["bar", "Bars (latest)"],
  ["pie", "Pie (latest)"], ["table", "Table (latest)"]];
const NUMBER_VIEWS = [["singleValue", "Number"], ["gauge", "Gauge"]];
const LOG_VIEWS = [["table", "Table"], ["timeSeries", "Lines over bin()"], ["stacked", "Stacked areas over bin()"],
  ["bar", "Bars"], ["pie", "Pie"]];
const SEARCH = /^SEARCH\('\{AWS\/Bedrock,(\w+)\} MetricName="(\w+)"', '([^']+)', (\d+)\)$/;
const SOURCE = /^\s*SOURCE\s+'((?:[^'\\]|\\.)*)'\s*\|\s*/;

/** The kinds the editor adds, each a new widget (placed by the caller). */
export const KINDS = [
  { key: "metric", label: "Metric chart", make: () => ({ type: "metric", width: 12, height: 6, properties: {
    view: "timeSeries", title: "Invocations by model", stat: "Sum", period: 300, metrics: [[{ expression: search("ModelId", "Invocations", "Sum", 300), id: "e1" }]] } }) },
  { key: "number", label: "Single number", make: () => ({ type: "metric", width: 8, height: 3, properties: {
    view: "singleValue", title: "Invocations", stat: "Sum", period: 300, setPeriodToTimeRange: true, metrics: [[NAMESPACE, "Invocations"]] } }) },
  { key: "logTable", label: "Logs Insights table", make: () => ({ type: "log", width: 24, height: 6, properties: {
    view: "table", title: "Latest errors", query: "fields @timestamp, modelId, errorCode, errorMessage\n| filter ispresent(errorCode)\n| sort @timestamp desc\n| limit 20" } }) },
  { key: "logChart", label: "Logs Insights chart", make: () => ({ type: "log", width: 12, height: 6, properties: {
    view: "timeSeries", title: "Requests per 5 minutes by model", query: "stats count(*) as requests by bin(5m), modelId" } }) },
  { key: "text", label: "Text (Markdown)", make: () => ({ type: "text", width: 24, height: 2, properties: {
    markdown: "## Notes\nWrite **Markdown** here: headings, lists, links, tables." } }) },
];

function search(split, metric, stat, period) {
  return `SEARCH('{${NAMESPACE},${split}} MetricName="${metric}"', '${stat}', ${period})`;
}

/** One metric, as the form shows it: {metric, stat, period, split} — or null when the rows are more than that. */
function simpleMetric(props) {
  const rows = props.metrics || [];
  if (rows.length !== 1 || !Array.isArray(rows[0])) return null;
  const row = rows[0];
  if (row.length === 1 && typeof row[0] === "object") {
    const m = SEARCH.exec(row[0].expression || "");
    return m ? { split: m[1], metric: m[2], stat: m[3], period: Number(m[4]) } : null;
  }
  const options = typeof row[row.length - 1] === "object" ? row[row.length - 1] : {};
  const names = typeof row[row.length - 1] === "object" ? row.slice(0, -1) : row;
  if (names.length !== 2 || names[0] !== NAMESPACE) return null;
  return { split: "", metric: names[1], stat: options.stat || props.stat || "Average", period: options.period || props.period || 300 };
}

function select(id, label, options, value) {
  const el = h("select", { id }, options.map(([v, text]) => h("option", { value: v, selected: String(v) === String(value) }, text)));
  return [el, h("label", { for: id }, label)];
}

function field(labelEl, control) {
  return h("div", { class: "field" }, labelEl, control);
}

/**
 * Open the form for `widget` (a body widget object); `onApply(newWidget)` gets the changed copy.
 * Returns a promise that settles when the form closes.
 */
export async function editWidget(widget, { ctx, logGroups = [] }) {
  const props = { ...(widget.properties || {}) };
  const parts = [];
  const read = [];
  const title = h("input", { type: "text", id: "wf-title", value: props.title || "" });
  if (widget.type !== "text") parts.push(field(h("label", { for: "wf-title" }, "Title"), title));

  if (widget.type === "metric") {
    const isNumber = ["singleValue", "gauge"].includes(props.view);
    const simple = simpleMetric(props);
    const views = isNumber ? NUMBER_VIEWS : CHART_VIEWS;
    const shownView = props.view === "timeSeries" && props.stacked ? "stacked" : props.view || "timeSeries";
    const [view, viewLabel] = select("wf-view", "Show as", views, shownView);
    parts.push(field(viewLabel, view));
    const whole = h("input", { type: "checkbox", id: "wf-whole", checked: props.setPeriodToTimeRange === true });
    parts.push(h("label", { class: "check" }, whole, "Over the whole time range (numbers, bars, pies, tables)"));
    if (simple) {
      const definitions = await metricDefinitions(ctx);
      const [metric, metricLabel] = select("wf-metric", "Metric", definitions.map((d) => [d.name, `${d.name} — ${d.description}`]), simple.metric);
      const [stat, statLabel] = select("wf-stat", "Statistic", STATS.map((s) => [s, s]), simple.stat);
      const [period, periodLabel] = select("wf-period", "Period", PERIODS, simple.period);
      const [split, splitLabel] = select("wf-split", "Lines", SPLITS, simple.split);
      parts.push(field(metricLabel, metric), h("div", { class: "field-row" }, field(statLabel, stat), field(periodLabel, period)), field(splitLabel, split));
      read.push(() => {
        const p = Number(period.value);
        props.stat = stat.value;
        props.period = p;
        props.metrics = split.value ? [[{ expression: search(split.value, metric.value, stat.value, p), id: "e1" }]]
          : [[NAMESPACE, metric.value]];
      });
    } else {
      parts.push(h("p", { class: "note" }, `This widget has ${(props.metrics || []).length} metric rows or metric math; `
        + "they are kept as they are. Change them in the dashboard's JSON (Edit JSON)."));
    }
    read.push(() => {
      props.view = view.value === "stacked" ? "timeSeries" : view.value;
      if (props.view === "timeSeries") props.stacked = view.value === "stacked";
      else delete props.stacked;
      if (whole.checked) props.setPeriodToTimeRange = true;
      else delete props.setPeriodToTimeRange;
    });
  } else if (widget.type === "log") {
    let rest = props.query || "";
    const groups = [];
    for (let m = SOURCE.exec(rest); m; m = SOURCE.exec(rest)) {
      groups.push(m[1].replace(/\\(.)/g, "$1"));
      rest = rest.slice(m[0].length);
    }
    const known = [...new Set([...logGroups, ...groups])];
    const groupBox = h("select", { id: "wf-groups", multiple: true, size: Math.min(5, Math.max(2, known.length)) },
      known.map((g) => h("option", { value: g, selected: groups.includes(g) }, g)));
    const query = h("textarea", { id: "wf-query", class: "code", rows: 7, spellcheck: "false" }, rest);
    const shownView = props.view === "timeSeries" && props.stacked ? "stacked" : props.view || "table";
    const [view, viewLabel] = select("wf-view", "Show as", LOG_VIEWS, shownView);
    parts.push(field(h("label", { for: "wf-groups" }, "Log groups (none chosen: every group)"), groupBox),
      field(h("label", { for: "wf-query" }, "Logs Insights query"), query), field(viewLabel, view),
      h("p", { class: "page-note" }, "Charts need a stats query: lines over a bin() column, bars and pies over a by column."));
    read.push(() => {
      const chosen = [...groupBox.selectedOptions].map((o) => o.value);
      const sources = chosen.map((g) => `SOURCE '${g.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}' | `).join("");
      props.query = sources + query.value.trim();
      props.view = view.value === "stacked" ? "timeSeries" : view.value;
      if (props.view === "timeSeries") props.stacked = view.value === "stacked";
      else delete props.stacked;
    });
  } else if (widget.type === "text") {
    const markdown = h("textarea", { id: "wf-markdown", class: "code", rows: 10 }, props.markdown || "");
    const [background, backgroundLabel] = select("wf-background", "Background", [["solid", "Card"], ["transparent", "None"]],
      props.background || "solid");
    parts.push(field(h("label", { for: "wf-markdown" }, "Markdown"), markdown), field(backgroundLabel, background));
    read.push(() => {
      props.markdown = markdown.value;
      if (background.value === "transparent") props.background = "transparent";
      else delete props.background;
    });
  } else {
    parts.push(h("p", { class: "note" }, `A "${widget.type}" widget is edited in the dashboard's JSON.`));
  }

  return new Promise((resolve) => {
    const overlay = h("div", { class: "overlay", role: "dialog", "aria-modal": "true", "aria-labelledby": "wf-heading" });
    const close = (result) => {
      overlay.remove();
      resolve(result);
    };
    const apply = (event) => {
      event.preventDefault();
      read.forEach((fn) => fn());
      if (widget.type !== "text") {
        if (title.value.trim()) props.title = title.value.trim();
        else delete props.title;
      }
      close({ ...widget, properties: props });
    };
    const form = h("form", { class: "dialog widget-form", onsubmit: apply },
      h("h2", { id: "wf-heading" }, `Edit ${widget.type === "log" ? "Logs Insights" : widget.type} widget`),
      parts,
      h("div", { class: "popover-actions" },
        h("button", { type: "button", class: "secondary", onclick: () => close(null) }, "Cancel"),
        h("button", { type: "submit", id: "wf-apply" }, "Apply")));
    overlay.addEventListener("keydown", (e) => e.key === "Escape" && close(null));
    overlay.append(form);
    document.body.append(overlay);
    (form.querySelector("input, textarea, select") || form).focus();
  });
}
