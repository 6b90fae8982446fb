// Small building blocks every page uses: cards, loading / empty / error states, downloads.

import { h } from "./format.js";

export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...children);
}

/** A placeholder that says data is on its way (screen readers hear it once). */
export function loading(text = "Loading…") {
  return h("div", { class: "state loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

export function empty(text, ...extra) {
  return h("div", { class: "state empty" }, text, ...extra);
}

export function failure(error) {
  const where = error.line ? ` (line ${error.line}, column ${error.column})` : "";
  return h("div", { class: "state failure", role: "alert" }, `Could not load: ${error.message}${where}`);
}

/** Replace el's content with one of the states above or with real content. */
export function show(el, ...content) {
  el.replaceChildren(...content.flat().filter(Boolean));
}

/** Let the browser save text as a file. */
export function download(filename, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Rows as CSV (RFC 4180 quoting), header first. */
export function toCsv(columns, rows) {
  const cell = (v) => {
    if (v == null) return "";
    const text = typeof v === "object" ? JSON.stringify(v) : String(v);
    return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return [columns.map(cell).join(","), ...rows.map((r) => columns.map((c) => cell(r[c])).join(","))].join("\r\n") + "\r\n";
}

/** True for an error that only means "the page was left or reloaded" or "log in first". */
export function quiet(error) {
  return error?.name === "AbortError" || error?.quiet === true;
}
