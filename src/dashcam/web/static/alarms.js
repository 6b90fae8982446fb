// Alarms: every alarm with its state, what it watches, its last value and how long it has been so.

import { alarmParts, conditionText, formatValue, STATE_WORDS, statePill } from "./alarmtext.js";
import { h, localTime, spanWords } from "./format.js";
import { empty, failure, loading, quiet, show } from "./ui.js";

export const TITLE = "Alarms";

const FILTERS = [["", "All"], ["ALARM", "In alarm"], ["OK", "OK"], ["INSUFFICIENT_DATA", "Insufficient data"]];
// Alarms in trouble first, then by name.
const ORDER = { ALARM: 0, INSUFFICIENT_DATA: 1, OK: 2 };

export function mount(root, ctx) {
  const filterBar = h("div", { class: "segmented", role: "group", "aria-label": "Show alarms" });
  const counts = h("p", { class: "page-note" });
  const box = h("div", { class: "card table-card" });
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Alarms"), filterBar), counts, box);
  let controller = null;
  let alarms = null;

  async function reload() {
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    if (!alarms) show(box, loading("Loading alarms…"));
    try {
      alarms = await ctx.api("/api/v1/alarms", { signal });
      draw();
    } catch (error) {
      if (!quiet(error)) show(box, failure(error));
    }
  }

  function draw() {
    const wanted = ctx.currentParams().get("state") || "";
    show(filterBar, FILTERS.map(([value, label]) => {
      const count = value ? alarms.filter((a) => a.state.value === value).length : alarms.length;
      return h("button", { type: "button", class: `segment${value === wanted ? " selected" : ""}`, "aria-pressed": String(value === wanted),
        "data-filter": value || "all",
        onclick: () => { ctx.setParams({ state: value || null }); draw(); } }, `${label} (${count})`);
    }));
    const tally = Object.keys(STATE_WORDS).map((s) => `${alarms.filter((a) => a.state.value === s).length} ${STATE_WORDS[s].toLowerCase()}`);
    counts.textContent = alarms.length
      ? `${alarms.length} alarm${alarms.length === 1 ? "" : "s"}: ${tally.join(", ")}. The server evaluates every alarm once a minute.`
      : "";
    if (!alarms.length) {
      show(box, empty("No alarms yet. Define one with boto3's put_metric_alarm, PUT /api/v1/alarms/{name}, or "
        + "dashcam alarms put — see docs/alarms.md."));
      return;
    }
    const shown = alarms.filter((a) => !wanted || a.state.value === wanted)
      .sort((a, b) => ORDER[a.state.value] - ORDER[b.state.value] || a.name.localeCompare(b.name));
    if (!shown.length) {
      show(box, empty(`No alarm is ${STATE_WORDS[wanted].toLowerCase()}.`));
      return;
    }
    const now = Date.now();
    const rows = shown.map((alarm) => {
      const actions = ["AlarmActions", "OKActions", "InsufficientDataActions"]
        .reduce((sum, key) => sum + (alarm.definition[key] || []).length, 0);
      const state = alarm.state;
      return h("tr", { "data-alarm": alarm.name },
        h("td", {}, statePill(state.value)),
        h("th", { scope: "row", class: "alarm-name" },
          h("a", { href: ctx.pageUrl("/alarm", { name: alarm.name }), "data-nav": true }, alarm.name),
          alarm.definition.AlarmDescription ? h("div", { class: "muted small description" }, alarm.definition.AlarmDescription) : null),
        h("td", { class: "wrap" }, conditionText(alarm)),
        h("td", { class: "num" }, formatValue(alarmParts(alarm), state.lastValue)),
        h("td", { title: localTime(state.transitionedMs) }, `${spanWords(Math.max(0, now - state.transitionedMs))} ago`),
        h("td", {}, state.lastEvaluatedMs ? `${spanWords(Math.max(0, now - state.lastEvaluatedMs))} ago` : "not yet"),
        h("td", { class: "num" }, actions ? String(actions) : "none"));
    });
    const head = h("tr", {}, ["State", "Name", "Condition", "Last value", "State since", "Evaluated", "Actions"]
      .map((label, i) => h("th", { scope: "col", class: i === 3 || i === 6 ? "num" : "" }, label)));
    show(box, h("div", { class: "table-wrap" },
      h("table", { class: "results alarms-table" }, h("thead", {}, head), h("tbody", {}, rows))));
  }

  reload();
  return { reload, dispose: () => controller?.abort() };
}
