// Dashboards: every saved dashboard, a new one (empty or from a shipped example), and a body
// pasted or loaded from a file (a dashboard exported from CloudWatch renders as it is).

import { ApiError } from "./app.js";
import { fmtCompact, h, localTime } from "./format.js";
import { card, empty, failure, loading, quiet, show } from "./ui.js";

export const TITLE = "Dashboards";

export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,255}$/;

export function mount(root, ctx) {
  const actions = h("div", { class: "actions" });
  const box = h("div", { class: "card table-card" });
  const importBox = h("div");
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Dashboards"), actions),
    h("p", { class: "page-note" }, "Dashboards are stored as CloudWatch dashboard bodies: boto3's put_dashboard, the "
      + "AWS CLI and dashboards exported from AWS work as they are."),
    box, importBox);
  let controller = null;

  async function reload() {
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    if (!box.querySelector("table")) show(box, loading("Loading dashboards…"));
    try {
      const [list, who] = await Promise.all([ctx.api("/api/v1/dashboards", { signal }), ctx.whoami(signal)]);
      const admin = who.role === "admin";
      show(actions, admin ? h("a", { class: "button", href: ctx.pageUrl("/dashboard", { new: "1" }), "data-nav": true }, "New dashboard") : null);
      drawList(list);
      show(importBox, admin ? importCard() : null);
    } catch (error) {
      if (!quiet(error)) show(box, failure(error));
    }
  }

  function drawList(list) {
    if (!list.length) {
      show(box, empty("No dashboards yet. Create one, or load a CloudWatch dashboard body below."));
      return;
    }
    const head = h("tr", {}, ["Name", "Widgets", "Last changed", "Size"].map((label, i) =>
      h("th", { scope: "col", class: i === 1 || i === 3 ? "num" : "" }, label)));
    const rows = list.map((d) => h("tr", { "data-dashboard": d.name },
      h("th", { scope: "row" }, h("a", { href: ctx.pageUrl("/dashboard", { name: d.name }), "data-nav": true }, d.name)),
      h("td", { class: "num" }, String(d.widgets)),
      h("td", {}, localTime(d.lastModified)),
      h("td", { class: "num" }, `${fmtCompact(d.size)} B`)));
    show(box, h("div", { class: "table-wrap" }, h("table", { class: "results" }, h("thead", {}, head), h("tbody", {}, rows))));
  }

  function importCard() {
    const name = h("input", { type: "text", id: "import-name", placeholder: "my-dashboard", "aria-label": "Dashboard name", required: true });
    const text = h("textarea", { id: "import-body", class: "code", rows: 6, spellcheck: "false",
      placeholder: '{"widgets": [...]} — the DashboardBody of aws cloudwatch get-dashboard', "aria-label": "Dashboard body JSON" });
    const file = h("input", { type: "file", accept: ".json,application/json", "aria-label": "Load a body from a file" });
    const problems = h("div", { class: "form-error", role: "alert" });
    file.addEventListener("change", async () => {
      const chosen = file.files[0];
      if (!chosen) return;
      text.value = await chosen.text();
      if (!name.value) name.value = chosen.name.replace(/\.json$/i, "").replace(/[^A-Za-z0-9_-]/g, "-");
    });
    const save = async () => {
      problems.replaceChildren();
      if (!NAME_PATTERN.test(name.value)) {
        problems.textContent = "A name is 1 to 255 letters, digits, - and _.";
        return;
      }
      try {
        await ctx.api(`/api/v1/dashboards/${encodeURIComponent(name.value)}`, { method: "PUT", text: text.value });
        ctx.navigate(ctx.pageUrl("/dashboard", { name: name.value }));
      } catch (error) {
        if (!quiet(error)) showProblems(problems, error);
      }
    };
    return card("Load a dashboard body",
      h("p", { class: "page-note" }, "Paste a CloudWatch dashboard body (for example from ",
        h("code", {}, "aws cloudwatch get-dashboard --query DashboardBody --output text"), ") or pick a file."),
      h("div", { class: "form-row" }, h("label", {}, "Name ", name), file),
      text, problems,
      h("div", { class: "actions" }, h("button", { type: "button", onclick: save, id: "import-save" }, "Save dashboard")));
  }

  reload();
  return { reload, dispose: () => controller?.abort() };
}

/** A refused body's problems, each with where it is in the body. */
export function showProblems(el, error) {
  el.replaceChildren(h("div", {}, error.message));
  if (error instanceof ApiError && error.messages.length) {
    el.append(h("ul", { class: "problems" }, error.messages.map((m) =>
      h("li", {}, h("code", {}, m.dataPath || "/"), " ", m.message))));
  }
}
