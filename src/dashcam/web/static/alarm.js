// One alarm: its state and reason, the watched metric charted with the threshold or the anomaly
// band (and the times it was in alarm shaded), its state history, the actions it took, and its
// definition. Admins may set its state (to test its actions).

import {
  actionsByState, alarmParts, conditionText, formatValue, metricQueries, missingText, STATE_WORDS, statePill, watchedText,
} from "./alarmtext.js";
import { isFullAdmin } from "./app.js";
import { baseLayout, CONFIG, purge, scaleFor } from "./charts.js";
import { fmtCompact, h, localTime, spanWords } from "./format.js";
import { metricUnit } from "./metrics.js";
import { card, empty, failure, loading, quiet, show } from "./ui.js";

export const TITLE = "Alarm";

const SERIES_COLOR = "#2563eb";
const THRESHOLD_COLOR = "#dc2626";

export function mount(root, ctx) {
  const name = ctx.currentParams().get("name") || "";
  const head = h("div", { class: "alarm-head" });
  const facts = h("div", { class: "card" });
  const chartTitle = h("h2", {}, "Metric");
  const chart = h("div", { class: "chart", "data-chart": "alarm" });
  const chartNote = h("p", { class: "page-note chart-note" });
  const states = h("div", { class: "history-box", "data-history": "StateUpdate" });
  const actions = h("div", { class: "history-box", "data-history": "Action" });
  const config = h("div", { class: "history-box", "data-history": "ConfigurationUpdate" });
  const definition = h("pre", { class: "json raw-definition" });
  root.append(
    h("p", { class: "crumbs" }, h("a", { href: ctx.pageUrl("/alarms"), "data-nav": true }, "← Alarms")),
    head,
    h("div", { class: "alarm-layout" },
      h("div", { class: "alarm-main" }, card(null, chartTitle, chart, chartNote),
        card("State history", states), card("Actions taken", actions)),
      h("div", { class: "alarm-side" }, facts,
        card("Configuration changes", config),
        h("details", { class: "card definition" }, h("summary", {}, "Definition (PutMetricAlarm JSON)"), definition))),
  );
  let controller = null;

  async function reload() {
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    if (!head.children.length) show(head, loading("Loading the alarm…"));
    if (!name) {
      show(head, empty("No alarm named. ", h("a", { href: ctx.pageUrl("/alarms"), "data-nav": true }, "See every alarm")));
      return;
    }
    const path = `/api/v1/alarms/${encodeURIComponent(name)}`;
    try {
      const range = await ctx.resolveRange(signal);
      const [alarm, history, who] = await Promise.all([
        ctx.api(path, { signal }),
        ctx.api(`${path}/history?limit=1000`, { signal }),
        ctx.whoami(signal),
      ]);
      const parts = alarmParts(alarm);
      drawHead(alarm, isFullAdmin(who));
      drawFacts(alarm, parts);
      drawHistory(history);
      definition.textContent = JSON.stringify(alarm.definition, null, 2);
      await drawChart(alarm, parts, history, range, signal);
    } catch (error) {
      if (!quiet(error)) show(head, failure(error));
    }
  }

  function drawHead(alarm, admin) {
    const state = alarm.state;
    const since = `${STATE_WORDS[state.value]} since ${localTime(state.transitionedMs)} (${spanWords(Math.max(0, Date.now() - state.transitionedMs))} ago)`;
    const controls = admin ? setStateForm(alarm) : null;
    show(head,
      h("div", { class: "page-head" }, h("h1", {}, statePill(state.value), " ", h("span", { class: "alarm-title" }, alarm.name)), controls),
      alarm.definition.AlarmDescription ? h("p", { class: "muted" }, alarm.definition.AlarmDescription) : null,
      h("p", { class: "reason", "data-reason": true }, h("strong", {}, since, ". "), state.reason));
  }

  function setStateForm(alarm) {
    const select = h("select", { "aria-label": "New state", class: "set-state-value" },
      Object.entries(STATE_WORDS).map(([value, words]) => h("option", { value, selected: value === alarm.state.value }, words)));
    const status = h("span", { class: "form-error", role: "alert" });
    const button = h("button", { type: "button", class: "secondary", onclick: async () => {
      status.textContent = "";
      try {
        await ctx.api(`/api/v1/alarms/${encodeURIComponent(alarm.name)}/state`, { method: "POST",
          body: { state: select.value, reason: "Set from the dashboard (to test the alarm's actions)" } });
        reload();
      } catch (error) {
        if (!quiet(error)) status.textContent = error.message;
      }
    } }, "Set state");
    return h("div", { class: "set-state", title: "Move the alarm now; its actions run, and the next evaluation moves it back if its data disagree" },
      select, button, status);
  }

  function drawFacts(alarm, parts) {
    const def = alarm.definition;
    const list = h("dl", { class: "facts" });
    const add = (label, value) => list.append(h("dt", {}, label), h("dd", {}, value));
    add("Kind", { static: "Static threshold", anomaly: "Anomaly band", query: "Logs Insights query" }[parts.kind] || parts.kind);
    add("Condition", conditionText(alarm));
    add("Missing data", missingText(alarm));
    add("Last value", formatValue(parts, alarm.state.lastValue));
    add("Last evaluated", alarm.state.lastEvaluatedMs ? localTime(alarm.state.lastEvaluatedMs) : "not yet");
    add("Actions", def.ActionsEnabled === false ? "disabled" : "enabled");
    for (const [state, list_] of actionsByState(alarm)) {
      add(`On ${STATE_WORDS[state].toLowerCase()}`, list_.length ? h("ul", { class: "plain" }, list_.map((a) => h("li", {}, h("code", {}, a)))) : "–");
    }
    if (parts.query) add("Query", h("pre", { class: "json" }, parts.query.expression));
    add("Created", localTime(alarm.createdMs));
    add("Configured", localTime(alarm.configurationUpdatedMs));
    show(facts, h("h2", {}, "About this alarm"), list);
  }

  function drawHistory(history) {
    const of = (type) => history.filter((item) => item.type === type);
    const when = (item) => h("td", { title: new Date(item.timestampMs).toISOString() }, localTime(item.timestampMs));
    const stateRows = of("StateUpdate").map((item) => {
      const old = item.data?.oldState?.stateValue;
      const next = item.data?.newState?.stateValue;
      return h("tr", {}, when(item), h("td", {}, old ? statePill(old) : ""), h("td", {}, next ? statePill(next) : ""),
        h("td", { class: "wrap" }, item.data?.newState?.stateReason || item.summary));
    });
    show(states, stateRows.length ? table(["Time", "From", "To", "Reason"], stateRows)
      : empty("No state changes yet: the alarm has kept its state since it was created."));
    const actionRows = of("Action").map((item) => {
      const d = item.data || {};
      const ok = d.actionState === "Succeeded";
      return h("tr", {}, when(item), h("td", {}, h("span", { class: `pill ${ok ? "good" : "bad"}` }, ok ? "Succeeded" : "Failed")),
        h("td", { class: "wrap" }, h("code", {}, d.notificationResource || item.summary)),
        h("td", { class: "num" }, d.attempt ?? ""),
        h("td", { class: "wrap" }, ok ? (d.detail || "") : `${d.error || ""}${d.willRetry ? " (will retry)" : ""}`));
    });
    show(actions, actionRows.length ? table(["Time", "Outcome", "Action", "Attempt", "Detail"], actionRows)
      : empty("No actions taken in the last 30 days."));
    const configRows = of("ConfigurationUpdate").map((item) => h("tr", {}, when(item), h("td", { class: "wrap" }, item.summary)));
    show(config, configRows.length ? table(["Time", "Change"], configRows) : empty("None."));
  }

  async function drawChart(alarm, parts, history, range, signal) {
    const def = alarm.definition;
    const intervals = alarmIntervals(alarm, history, range);
    chartTitle.textContent = { static: "Metric and threshold", anomaly: "Metric and expected band",
      query: "Query value and threshold" }[parts.kind] || "Metric";
    let series = [];
    let band = null;
    if (parts.kind === "query") {
      series = [queryPoints(history, alarm)];
      chartNote.textContent = "A query alarm is charted from the datapoints its evaluations saw (each evaluation keeps the newest ones).";
    } else {
      const metrics = (queries, from, to) => ctx.api("/api/v1/metrics", { method: "POST", signal,
        body: { queries, start: String(Math.floor(from)), end: String(Math.floor(to)) } });
      const queries = metricQueries(parts);
      const [answer, ...bandAnswers] = await Promise.all([
        metrics(queries.map((q) => ({ ...q, returnData: q.id === parts.watched?.id })), range.start, range.end),
        ...(parts.band ? bandSlices(range, parts.period).map(([from, to]) =>
          metrics(queries.map((q) => ({ ...q, returnData: q.id === parts.band.id })), from, to)) : []),
      ]);
      const watched = answer.results.find((r) => r.id === parts.watched?.id);
      // The period still filling is left out: it is never judged, and a part-period Sum looks low.
      const complete = watched ? watched.timestamps.map((t, i) => [t, watched.values[i]])
        .filter(([t]) => t + parts.period * 1000 <= Date.now()) : [];
      series = watched ? [{ x: complete.map(([t]) => t), y: complete.map(([, v]) => v), name: watchedText(parts) }] : [];
      if (bandAnswers.length) band = joinBands(bandAnswers.map((a) => a.results.filter((r) => r.id === parts.band.id)));
      chartNote.textContent = `${watchedText(parts)}, ${range.label.toLowerCase()}.${intervals.length ? " Shaded: times the alarm was in alarm." : ""}`;
    }
    const unit = parts.watched?.metricName ? metricUnit(parts.watched.metricName) : "int";
    const values = series.flatMap((s) => s.y).concat(band ? band.upper.values : []).concat(def.Threshold != null ? [def.Threshold] : []);
    const spec = scaleFor(unit, Math.max(0, ...values.filter((v) => v != null)));
    const scale = (list) => (spec.factor === 1 ? list : list.map((v) => (v == null ? v : v * spec.factor)));
    const data = [];
    if (band) {
      data.push({ type: "scatter", mode: "lines", name: "Band (lower)", x: band.lower.timestamps.map((t) => localTime(t)),
        y: scale(band.lower.values), line: { width: 0, color: "#9ca3af" }, hoverinfo: "skip", showlegend: false });
      data.push({ type: "scatter", mode: "lines", name: `Expected band (width ${parts.band.width})`, fill: "tonexty",
        fillcolor: "rgba(107,114,128,0.18)", x: band.upper.timestamps.map((t) => localTime(t)),
        y: scale(band.upper.values), line: { width: 0, color: "#9ca3af" }, hoverinfo: "skip" });
    }
    for (const s of series) {
      data.push({ type: "scatter", mode: s.x.length < 120 ? "lines+markers" : "lines", name: s.name,
        x: s.x.map((t) => localTime(t)), y: scale(s.y), line: { color: SERIES_COLOR, width: 1.8 }, marker: { size: 5 },
        hovertemplate: `%{y:${spec.hover}}${spec.suffix || ""}<extra></extra>` });
    }
    const layout = baseLayout(spec, { height: 300, legend: true });
    layout.hovermode = "x";
    layout.xaxis.range = [localTime(range.start), localTime(range.end)];
    layout.shapes = intervals.map(([from, to]) => ({ type: "rect", xref: "x", yref: "paper", x0: localTime(from), x1: localTime(to),
      y0: 0, y1: 1, fillcolor: "rgba(220,38,38,0.09)", line: { width: 0 }, layer: "below" }));
    if (def.Threshold != null && parts.kind !== "anomaly") {
      const y = def.Threshold * spec.factor;
      layout.shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: y, y1: y,
        line: { color: THRESHOLD_COLOR, width: 1.5, dash: "dash" } });
      layout.annotations = [{ xref: "paper", x: 1, xanchor: "right", yref: "y", y, yanchor: "bottom", showarrow: false,
        text: `threshold ${fmtCompact(def.Threshold)}`, font: { size: 11, color: THRESHOLD_COLOR } }];
    }
    if (!series.some((s) => s.x.length)) {
      layout.annotations = [...(layout.annotations || []), { text: "No datapoints in this range", showarrow: false,
        xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { size: 13, color: "#6b7280" } }];
    }
    window.Plotly.react(chart, data, layout, CONFIG);
  }

  reload();
  return { reload, dispose() { controller?.abort(); purge(chart); } };
}

/**
 * Pieces of the range, each aligned to the period, to draw the anomaly band over: the band of a
 * piece is learned from the two weeks before it (as the alarm's is before its evaluation), so a
 * range that starts where the data starts still shows the band where history exists.
 */
function bandSlices(range, periodS) {
  const step = periodS * 1000;
  const count = Math.min(6, Math.max(1, Math.round(range.spanMs / 3.6e6)));
  const size = Math.ceil(range.spanMs / count / step) * step;
  const slices = [];
  for (let from = Math.floor(range.start / step) * step; from < range.end; from += size) slices.push([from, Math.min(range.end, from + size)]);
  return slices;
}

/** The band pieces ([lower, upper] results each) joined into one {lower, upper}. */
function joinBands(pieces) {
  const band = { lower: { timestamps: [], values: [] }, upper: { timestamps: [], values: [] } };
  for (const piece of pieces) {
    if (piece.length !== 2) continue;
    for (const [part, result] of [["lower", piece[0]], ["upper", piece[1]]]) {
      band[part].timestamps.push(...result.timestamps);
      band[part].values.push(...result.values);
    }
  }
  return band.lower.timestamps.length ? band : null;
}

function table(columns, rows) {
  return h("div", { class: "table-wrap" }, h("table", { class: "results history" },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, rows)));
}

/** [start, end] epoch ms of the times the alarm was in ALARM within the range, from its state changes. */
function alarmIntervals(alarm, history, range) {
  const changes = history.filter((item) => item.type === "StateUpdate").sort((a, b) => a.timestampMs - b.timestampMs);
  const intervals = [];
  let since = null;
  // The state before the first change in the history is that change's old state.
  if (changes.length && changes[0].data?.oldState?.stateValue === "ALARM") since = -Infinity;
  for (const item of changes) {
    const next = item.data?.newState?.stateValue;
    if (next === "ALARM" && since == null) since = item.timestampMs;
    else if (next !== "ALARM" && since != null) {
      intervals.push([since, item.timestampMs]);
      since = null;
    }
  }
  if (!changes.length && alarm.state.value === "ALARM") since = alarm.state.transitionedMs;
  if (since != null) intervals.push([since, Date.now()]);
  return intervals
    .map(([from, to]) => [Math.max(from, range.start), Math.min(to, range.end)])
    .filter(([from, to]) => from < to);
}

/** A query alarm's datapoints, gathered from the reason data of its state changes. */
function queryPoints(history, alarm) {
  const points = new Map();
  for (const item of history) {
    for (const key of ["oldState", "newState"]) {
      for (const point of item.data?.[key]?.stateReasonData?.evaluatedDatapoints || []) {
        const t = Date.parse(point.timestamp.replace(/\+0000$/, "Z"));
        if (!Number.isNaN(t) && point.value != null) points.set(t, point.value);
      }
    }
  }
  const reason = alarm.state.reasonData?.evaluatedDatapoints || [];
  for (const point of reason) {
    const t = Date.parse(point.timestamp.replace(/\+0000$/, "Z"));
    if (!Number.isNaN(t) && point.value != null) points.set(t, point.value);
  }
  const sorted = [...points.entries()].sort((a, b) => a[0] - b[0]);
  return { name: "Query value", x: sorted.map(([t]) => t), y: sorted.map(([, v]) => v) };
}
