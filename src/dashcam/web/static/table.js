// Result tables: query rows rendered readably (local times, grouped numbers, short model names).

import { h, isResultTime, localTime, modelLabel, parseResultTime } from "./format.js";

const MODEL_COLUMNS = /(^|\.)modelId$/;

/** One cell's text (and full text for a tooltip when it was shortened). */
export function cellText(column, value, { compact = false } = {}) {
  if (value == null) return { text: "" };
  if (typeof value === "number") {
    const digits = Number.isInteger(value) ? 0 : Math.abs(value) < 1 ? 4 : 2;
    return { text: value.toLocaleString("en-US", { maximumFractionDigits: digits }) };
  }
  const text = String(value);
  if (MODEL_COLUMNS.test(column)) {
    const label = modelLabel(text);
    return { text: label, title: label !== text ? text : undefined };
  }
  if (isResultTime(text)) {
    const local = localTime(parseResultTime(text), { seconds: !compact });
    return { text: compact ? local.slice(5) : local, title: `${text} UTC` };
  }
  if (text.length > 160) return { text: `${text.slice(0, 160)}…`, title: text.slice(0, 2000) };
  return { text };
}

/**
 * A table of rows. options: limit (rows drawn at first; a button shows more), openLink(row) -> href
 * for a first "open" column, caption, sortable (headers sort on click), compact (times without year and seconds).
 */
export function resultTable(columns, rows, { limit = 500, openLink, caption, sortable = false, compact = false } = {}) {
  let shown = columns.filter((c) => c !== "@ptr");
  const numeric = new Set(shown.filter((c) => rows.some((r) => typeof r[c] === "number") && rows.every((r) => r[c] == null || typeof r[c] === "number")));
  if (compact) shown = compactColumns(shown, numeric, rows);
  let order = rows;
  let drawn = Math.min(limit, rows.length);
  const body = h("tbody");
  const table = h("table", { class: "results" });
  if (caption) table.append(h("caption", {}, caption));

  const headRow = h("tr", {}, openLink ? h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Open")) : null);
  for (const column of shown) {
    const th = h("th", { scope: "col", class: numeric.has(column) ? "num" : "" });
    if (sortable) {
      const button = h("button", { type: "button", class: "sort" }, column);
      button.addEventListener("click", () => sortBy(column, th));
      th.append(button);
    } else th.textContent = column;
    headRow.append(th);
  }
  table.append(h("thead", {}, headRow), body);

  const more = h("button", { type: "button", class: "secondary more" });
  more.addEventListener("click", () => {
    drawn = Math.min(rows.length, drawn + limit);
    draw();
  });

  function draw() {
    const fragment = document.createDocumentFragment();
    for (const row of order.slice(0, drawn)) {
      const tr = h("tr");
      if (openLink) {
        const href = openLink(row);
        tr.append(h("td", { class: "open" }, href ? h("a", { href, "data-nav": true, title: "Open this invocation" }, "Open") : ""));
      }
      for (const column of shown) {
        const { text, title } = cellText(column, row[column], { compact });
        tr.append(h("td", { class: numeric.has(column) ? "num" : "", title }, text));
      }
      fragment.append(tr);
    }
    body.replaceChildren(fragment);
    more.hidden = drawn >= rows.length;
    more.textContent = `Show ${Math.min(limit, rows.length - drawn).toLocaleString("en-US")} more of ${(rows.length - drawn).toLocaleString("en-US")}`;
  }

  function sortBy(column, th) {
    const descending = th.getAttribute("aria-sort") !== "descending";
    for (const other of headRow.children) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    const sign = descending ? -1 : 1;
    order = [...rows].sort((a, b) => {
      const x = a[column];
      const y = b[column];
      if (x == null) return 1;
      if (y == null) return -1;
      return (x < y ? -1 : x > y ? 1 : 0) * sign;
    });
    draw();
  }

  draw();
  return h("div", { class: "table-wrap" }, table, more);
}

/**
 * Three columns for a small card: the time and the first number, or without a time the last two
 * numbers (stats put what they sort by last); then one label, often the model.
 */
function compactColumns(columns, numeric, rows) {
  const times = columns.filter((c) => !numeric.has(c) && rows.every((r) => r[c] == null || isResultTime(r[c])));
  const labels = columns.filter((c) => !numeric.has(c) && !times.includes(c)).slice(0, 1);
  const numbers = columns.filter((c) => numeric.has(c));
  const room = 3 - labels.length;
  const keep = times.length ? [times[0], ...numbers].slice(0, room) : numbers.slice(-room);
  return [...keep, ...labels];
}
