// One dashboard: its widgets drawn on a 24-column grid (x, y, width, height as in the CloudWatch
// body), each resolved by the server; and, for admins, the editor: add, edit, move, resize and
// remove widgets, or edit the body's JSON directly; save; share the URL.
//
// /dashboard?name=N shows N (over its own time range unless the URL names one), &edit=1 opens the
// editor, /dashboard?new=1 starts a new one (empty or from a shipped example).

import { h } from "./format.js";
import { NAME_PATTERN, showProblems } from "./dashboards.js";
import { drawWidget, GRID_COLUMNS, layOut, widgetTitle } from "./widgets.js";
import { editWidget, KINDS } from "./widgetform.js";
import { download, empty, failure, loading, quiet, show } from "./ui.js";
import { purge } from "./charts.js";

export const TITLE = "Dashboard";

const ISO_DURATION = /^-P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;

/** The URL range of a body's own start/end ({range} or {start, end}); null when it has none we can show. */
export function bodyRange(document) {
  const start = document?.start;
  if (!start) return null;
  const m = ISO_DURATION.exec(start);
  if (m) {
    const [w, d, hr, min, s] = m.slice(1).map((v) => Number(v || 0));
    const seconds = (((w * 7 + d) * 24 + hr) * 60 + min) * 60 + s;
    if (!seconds) return null;
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
      if (seconds % size === 0) return { range: `${seconds / size}${unit}` };
    }
  }
  const from = Date.parse(start);
  const to = document.end ? Date.parse(document.end) : Date.now();
  if (Number.isNaN(from) || Number.isNaN(to) || from >= to) return null;
  return { start: new Date(from).toISOString(), end: new Date(to).toISOString() };
}

export function mount(root, ctx) {
  const params = ctx.currentParams();
  let name = params.get("name") || "";
  const isNew = !name && params.get("new") === "1";
  let editing = isNew || params.get("edit") === "1";
  let body = null; // the body document shown (and edited)
  let rawText = null; // JSON text typed in the JSON editor, saved as it is while nothing else changed
  let dirty = false;
  let draftName = ""; // a new dashboard's name as typed (the head is drawn again on every change)
  let who = null;
  let logGroups = [];
  let examples = null; // the shipped examples, asked for once
  let controller = null;
  const cache = new WeakMap(); // widget object -> its resolved data (an edited widget is a new object)

  const headBox = h("div", { class: "page-head dashboard-head" });
  const status = h("div", { class: "form-error", role: "alert" });
  const notes = h("div", { class: "dash-notes" });
  const grid = h("div", { class: "dash-grid", "aria-label": "Widgets" });
  root.append(h("p", { class: "crumbs" }, h("a", { href: ctx.pageUrl("/dashboards"), "data-nav": true }, "← Dashboards")),
    headBox, status, notes, grid);

  async function reload() {
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    try {
      who = who || await ctx.whoami(signal);
      if (!body || (!dirty && !isNewUnsaved())) {
        if (isNewUnsaved()) body = { widgets: [] };
        else {
          show(grid, loading("Loading the dashboard…"));
          const stored = await ctx.api(`/api/v1/dashboards/${encodeURIComponent(name)}`, { signal });
          body = stored.body;
          rawText = stored.bodyText;
          drawNotes(stored.messages);
          adoptBodyRange();
        }
      }
      if (editing) logGroups = (await ctx.api("/api/v1/log-groups", { signal }).catch(() => [])).map((g) => g.name);
      drawHead();
      drawGrid({ refetch: true });
    } catch (error) {
      if (!quiet(error)) show(grid, failure(error));
    }
  }

  const isNewUnsaved = () => isNew && !name;

  /** Without a range in the URL, the dashboard's own range is used (and written there). */
  function adoptBodyRange() {
    const now = ctx.currentParams();
    if (now.get("range") || now.get("start") || now.get("end")) return;
    const range = bodyRange(body);
    if (range) ctx.setParams(range);
  }

  function drawNotes(messages) {
    const warnings = (messages || []).filter((m) => m.severity === "warning");
    show(notes, warnings.length ? h("details", { class: "note" }, h("summary", {}, `${warnings.length} part${warnings.length === 1 ? "" : "s"} of this body will not show data here`),
      h("ul", { class: "problems" }, warnings.map((m) => h("li", {}, h("code", {}, m.dataPath), " ", m.message)))) : null);
  }

  // ------------------------------------------------------------------ head and toolbar

  function drawHead() {
    const admin = who?.role === "admin";
    const title = isNewUnsaved()
      ? h("label", { class: "inline name-field" }, "Name ", h("input", { type: "text", id: "dashboard-name", placeholder: "my-dashboard",
        value: draftName, "aria-label": "Dashboard name", oninput: (e) => { draftName = e.target.value; } }))
      : h("h1", {}, name);
    const buttons = [];
    if (editing) {
      const add = h("details", { class: "dropdown add-widget" }, h("summary", {}, "Add widget"),
        h("div", { class: "dropdown-body" }, KINDS.map((kind) => h("button", { type: "button", class: "secondary small",
          "data-kind": kind.key, onclick: (e) => { e.target.closest("details").open = false; addWidget(kind); } }, kind.label))));
      buttons.push(add);
      if (isNewUnsaved()) buttons.push(examplePicker());
      buttons.push(h("button", { type: "button", class: "secondary", onclick: editJson }, "Edit JSON"),
        h("button", { type: "button", id: "dashboard-save", onclick: save }, "Save"),
        h("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel"));
      if (!isNewUnsaved()) buttons.push(h("button", { type: "button", class: "secondary danger", onclick: remove }, "Delete"));
      if (dirty) buttons.push(h("span", { class: "muted dirty" }, "Unsaved changes"));
    } else {
      if (admin) buttons.push(h("button", { type: "button", id: "dashboard-edit", onclick: startEditing }, "Edit"));
      buttons.push(h("button", { type: "button", class: "secondary", id: "dashboard-share", onclick: share }, "Share"),
        h("button", { type: "button", class: "secondary", onclick: () => download(`${name}.json`, bodyText(), "application/json") }, "Download JSON"));
    }
    show(headBox, title, h("div", { class: "actions" }, buttons));
  }

  function examplePicker() {
    const picker = h("select", { "aria-label": "Start from an example", id: "dashboard-example" }, h("option", { value: "" }, "Start from an example…"));
    examples = examples || ctx.api("/api/v1/dashboard-examples");
    examples.then((list) => {
      for (const example of list) picker.append(h("option", { value: example.body }, example.name));
    }).catch(() => { examples = null; });
    picker.addEventListener("change", () => {
      if (!picker.value) return;
      body = JSON.parse(picker.value);
      rawText = picker.value;
      changed({ keepRaw: true });
    });
    return picker;
  }

  function bodyText() {
    return rawText != null ? rawText : JSON.stringify(body, null, 2);
  }

  function startEditing() {
    editing = true;
    ctx.setParams({ edit: "1" });
    reload();
  }

  function cancel() {
    if (dirty && !window.confirm("Discard the unsaved changes?")) return;
    if (isNewUnsaved()) {
      ctx.navigate(ctx.pageUrl("/dashboards"));
      return;
    }
    editing = false;
    dirty = false;
    body = null;
    ctx.setParams({ edit: null });
    reload();
  }

  async function save() {
    status.replaceChildren();
    const target = isNewUnsaved() ? draftName.trim() : name;
    if (!NAME_PATTERN.test(target)) {
      status.textContent = "A dashboard name is 1 to 255 letters, digits, - and _.";
      return;
    }
    try {
      await ctx.api(`/api/v1/dashboards/${encodeURIComponent(target)}`, { method: "PUT", text: bodyText() });
    } catch (error) {
      if (!quiet(error)) showProblems(status, error);
      return;
    }
    const wasNew = isNewUnsaved();
    name = target;
    dirty = false;
    editing = false;
    if (wasNew) {
      ctx.navigate(ctx.pageUrl("/dashboard", { name }), { replace: true });
      return;
    }
    ctx.setParams({ edit: null });
    drawHead();
    drawGrid({ refetch: false });
  }

  async function remove() {
    if (!window.confirm(`Delete the dashboard ${name}?`)) return;
    try {
      await ctx.api(`/api/v1/dashboards/${encodeURIComponent(name)}`, { method: "DELETE" });
      ctx.navigate(ctx.pageUrl("/dashboards"));
    } catch (error) {
      if (!quiet(error)) status.textContent = error.message;
    }
  }

  async function share() {
    const url = `${location.origin}${ctx.pageUrl("/dashboard", { name })}`;
    let copied = false;
    try {
      await navigator.clipboard.writeText(url);
      copied = true;
    } catch {
      /* no clipboard (an insecure origin, a denied permission): the link is shown to copy by hand */
    }
    const field = h("input", { type: "text", readonly: true, value: url, class: "share-url", "aria-label": "Link to this dashboard" });
    show(notes, h("div", { class: "note share" }, copied ? "Link copied: " : "Link to this view: ", field,
      " — it keeps the time range. Anyone with a read key can open it."));
    field.select();
  }

  // ------------------------------------------------------------------ editing

  /** Record a change to the body: positions settled, unsaved, the grid drawn again. */
  function changed({ keepRaw = false, refetch = false } = {}) {
    if (!keepRaw) rawText = null;
    settle();
    dirty = true;
    drawHead();
    drawGrid({ refetch });
  }

  /** Give every widget the place it is drawn at, so what is saved is what is seen. */
  function settle() {
    const places = layOut(body.widgets || []);
    (body.widgets || []).forEach((w, i) => Object.assign(w, places[i]));
  }

  function addWidget(kind) {
    const widget = kind.make();
    const bottom = Math.max(0, ...(body.widgets || []).map((w) => (w.y ?? 0) + (w.height ?? 6)));
    Object.assign(widget, { x: 0, y: bottom });
    body.widgets = [...(body.widgets || []), widget];
    changed();
    openForm(body.widgets.length - 1);
  }

  async function openForm(index) {
    const edited = await editWidget(body.widgets[index], { ctx, logGroups });
    if (!edited) return;
    body.widgets[index] = edited;
    changed();
  }

  function move(index, dx, dy) {
    settle();
    const w = body.widgets[index];
    w.x = Math.min(GRID_COLUMNS - w.width, Math.max(0, w.x + dx));
    w.y = Math.max(0, w.y + dy);
    if (dy < 0) {
      // Moving up past a widget: it goes below this one.
      for (const other of body.widgets) if (other !== w && overlaps(w, other)) other.y = w.y + w.height;
    }
    changed();
  }

  function resize(index, dw, dh) {
    settle();
    const w = body.widgets[index];
    w.width = Math.min(GRID_COLUMNS - w.x, Math.max(1, w.width + dw));
    w.height = Math.min(1000, Math.max(1, w.height + dh));
    cache.delete(w); // drawn again at its new size from fresh data
    changed();
  }

  function removeWidget(index) {
    body.widgets.splice(index, 1);
    changed();
  }

  function editJson() {
    const area = h("textarea", { class: "code json-editor", id: "json-editor", spellcheck: "false", rows: 24 }, bodyText());
    const problem = h("p", { class: "form-error", role: "alert" });
    const overlay = h("div", { class: "overlay", role: "dialog", "aria-modal": "true", "aria-labelledby": "json-heading" });
    const close = () => overlay.remove();
    const apply = () => {
      let parsed;
      try {
        parsed = JSON.parse(area.value);
      } catch (error) {
        problem.textContent = `Not valid JSON: ${error.message}`;
        return;
      }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed) || !Array.isArray(parsed.widgets)) {
        problem.textContent = 'A dashboard body is a JSON object with a "widgets" array.';
        return;
      }
      body = parsed;
      rawText = area.value;
      close();
      dirty = true;
      drawHead();
      drawGrid({ refetch: true });
    };
    overlay.append(h("div", { class: "dialog json-dialog" },
      h("h2", { id: "json-heading" }, "Dashboard body (CloudWatch JSON)"),
      h("p", { class: "page-note" }, "The body as CloudWatch's PutDashboard takes it. Apply, then Save; the server checks it and names any mistake by its place in the body."),
      area, problem,
      h("div", { class: "popover-actions" },
        h("button", { type: "button", class: "secondary", onclick: close }, "Cancel"),
        h("button", { type: "button", id: "json-apply", onclick: apply }, "Apply"))));
    overlay.addEventListener("keydown", (e) => e.key === "Escape" && close());
    document.body.append(overlay);
    area.focus();
  }

  // ------------------------------------------------------------------ the grid

  function drawGrid({ refetch }) {
    grid.querySelectorAll(".chart").forEach(purge);
    const widgets = body?.widgets || [];
    if (!widgets.length) {
      show(grid, empty(editing ? "No widgets yet: add one with Add widget, or paste a body with Edit JSON." : "This dashboard has no widgets."));
      return;
    }
    const places = layOut(widgets);
    // Reading order, so narrow screens (one column) stack widgets as they read on wide ones.
    const order = widgets.map((w, i) => i).sort((a, b) => places[a].y - places[b].y || places[a].x - places[b].x);
    const frames = order.map((i) => frame(widgets[i], i, places[i], refetch));
    show(grid, frames);
  }

  function frame(widget, index, place, refetch) {
    const bodyEl = h("div", { class: "widget-body" });
    const title = widgetTitle(widget);
    const tools = editing ? h("div", { class: "widget-tools", role: "group", "aria-label": `Arrange ${title || "widget"}` },
      tool("←", "Move left", () => move(index, -1, 0)), tool("→", "Move right", () => move(index, 1, 0)),
      tool("↑", "Move up", () => move(index, 0, -1)), tool("↓", "Move down", () => move(index, 0, 1)),
      tool("−W", "Narrower", () => resize(index, -1, 0)), tool("+W", "Wider", () => resize(index, 1, 0)),
      tool("−H", "Shorter", () => resize(index, 0, -1)), tool("+H", "Taller", () => resize(index, 0, 1)),
      tool("Edit", "Edit this widget", () => openForm(index)), tool("✕", "Remove this widget", () => removeWidget(index))) : null;
    const el = h("section", { class: `widget widget-${widget.type}${widget.type === "text" && widget.properties?.background === "transparent" ? " bare" : ""}`,
      "data-widget": index, "data-type": widget.type, "data-view": widget.properties?.view || "",
      style: `grid-column: ${place.x + 1} / span ${place.width}; grid-row: ${place.y + 1} / span ${place.height}; --h: ${place.height}` },
      title || tools ? h("header", { class: "widget-head" }, h("h2", { title }, title), tools) : null, bodyEl);
    const cached = cache.get(widget);
    // Drawn once the frame is on the page: charts size themselves by what is around them.
    if (cached && !refetch) requestAnimationFrame(() => drawInto(bodyEl, cached, place.height));
    else fetchWidget(widget, index, bodyEl, place.height);
    return el;
  }

  function tool(text, label, onclick) {
    return h("button", { type: "button", class: "tool", title: label, "aria-label": label, onclick }, text);
  }

  async function fetchWidget(widget, index, el, units) {
    show(el, loading());
    const signal = controller?.signal;
    try {
      const range = await ctx.resolveRange(signal);
      const start = String(Math.floor(range.start));
      const end = String(Math.floor(range.end));
      let data;
      if (editing || dirty || isNewUnsaved()) {
        data = await ctx.api("/api/v1/widgets/data", { method: "POST", signal,
          body: { widget, start, end, periodOverride: body.periodOverride || "auto" } });
      } else {
        const query = new URLSearchParams({ start, end });
        data = await ctx.api(`/api/v1/dashboards/${encodeURIComponent(name)}/widgets/${index}/data?${query}`, { method: "POST", signal });
      }
      cache.set(widget, data);
      drawInto(el, data, units);
    } catch (error) {
      if (!quiet(error)) show(el, failure(error));
    }
  }

  async function drawInto(el, data, units) {
    try {
      await drawWidget(el, data, { ctx, units });
    } catch (error) {
      if (!quiet(error)) show(el, failure(error));
    }
  }

  reload();
  return {
    reload,
    dispose() {
      controller?.abort();
      grid.querySelectorAll(".chart").forEach(purge);
    },
  };
}

function overlaps(a, b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

