// A Logs Insights editor: a plain textarea over a highlighted copy of its text, with line numbers
// and a marker at the line and column of a query error.

import { esc, h } from "./format.js";

const COMMANDS = new Set(["fields", "display", "filter", "stats", "sort", "limit", "parse", "dedup", "unnest",
  "source", "pattern", "diff", "anomaly", "filterindex"]);
const KEYWORDS = new Set(["by", "as", "asc", "desc", "and", "or", "not", "in", "like", "start", "end", "loggroups",
  "namePrefix", "true", "false", "null"]);

// One token at a time, sticky at the current position; the first group that matches names the kind.
const TOKEN = new RegExp([
  /(\s+)/.source,                                      // 1 space
  /(#[^\n]*)/.source,                                  // 2 comment
  /("(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?)/.source, // 3 string
  /(`[^`\n]*`?)/.source,                               // 4 backtick name
  /(\d+(?:\.\d+)?[a-zA-Z]*)/.source,                   // 5 number (units such as 5m stay with it)
  /(@[A-Za-z_@][\w.@-]*)/.source,                      // 6 system field
  /([A-Za-z_][\w.\-]*(?:\.\d+)*)/.source,              // 7 identifier
  /(\|)/.source,                                       // 8 pipe
  /(=~|==|!=|<=|>=|[=<>!+\-*%^]|\/)/.source,           // 9 operator (a lone / may start a regex, below)
  /([\s\S])/.source,                                   // 10 anything else
].join("|"), "y");
const REGEX = /\/(?:[^/\\\n]|\\.)*\/?/y;

/** [{kind, text}] for query text: command, keyword, function, field, system, string, regex, number, comment, pipe, op, punct, space. */
export function tokenize(text) {
  const tokens = [];
  let position = 0;
  let commandExpected = true;
  let regexAllowed = true;
  while (position < text.length) {
    if (text[position] === "/" && regexAllowed) {
      REGEX.lastIndex = position;
      const m = REGEX.exec(text);
      tokens.push({ kind: "regex", text: m[0] });
      position += m[0].length;
      regexAllowed = false;
      continue;
    }
    TOKEN.lastIndex = position;
    const m = TOKEN.exec(text);
    const [whole] = m;
    let kind;
    if (m[1]) kind = "space";
    else if (m[2]) kind = "comment";
    else if (m[3]) kind = "string";
    else if (m[4]) kind = "field";
    else if (m[5]) kind = "number";
    else if (m[6]) kind = "system";
    else if (m[7]) {
      const lower = whole.toLowerCase();
      const next = text.slice(position + whole.length).match(/^\s*\(/);
      if (commandExpected && COMMANDS.has(lower)) kind = "command";
      else if (KEYWORDS.has(lower) || KEYWORDS.has(whole)) kind = "keyword";
      else if (next) kind = "function";
      else kind = "field";
    } else if (m[8]) kind = "pipe";
    else if (m[9]) kind = "op";
    else kind = "punct";
    tokens.push({ kind, text: whole });
    position += whole.length;
    if (kind === "space" || kind === "comment") continue;
    commandExpected = kind === "pipe";
    regexAllowed = kind === "op" || kind === "pipe" || kind === "keyword" || kind === "command"
      || (kind === "punct" && whole !== ")" && whole !== "]");
  }
  return tokens;
}

/** Highlighted HTML for text; `errorAt` (0-based offset) marks the rest of the token there. */
export function highlight(text, errorAt = -1) {
  let html = "";
  let offset = 0;
  let marked = false;
  for (const token of tokenize(text)) {
    const end = offset + token.text.length;
    if (!marked && errorAt >= offset && errorAt < end) {
      const cut = errorAt - offset;
      const before = token.text.slice(0, cut);
      const after = token.text.slice(cut);
      const rest = after.match(/^\S+/)?.[0] || after[0];
      html += span(token.kind, before) + `<mark class="error-at">${span(token.kind, rest)}</mark>`
        + span(token.kind, after.slice(rest.length));
      marked = true;
    } else html += span(token.kind, token.text);
    offset = end;
  }
  if (errorAt >= 0 && !marked) html += '<mark class="error-at"> </mark>';
  // A trailing newline needs content after it, or the highlighted copy is one line short.
  return `${html}\n`;
}

function span(kind, text) {
  if (!text) return "";
  return kind === "space" ? esc(text) : `<span class="tok-${kind}">${esc(text)}</span>`;
}

/** The 0-based offset of a 1-based line and column in text. */
export function offsetOf(text, line, column) {
  const lines = text.split("\n");
  let offset = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length - 1); i++) offset += lines[i].length + 1;
  return Math.min(text.length, offset + Math.max(0, column - 1));
}

/**
 * An editor element: {element, textarea, value, setValue(text), setError({line, column} | null), focus()}.
 * onRun is called for Ctrl+Enter / Cmd+Enter.
 */
export function createEditor({ value = "", onRun, onInput, label = "Logs Insights query" } = {}) {
  const code = h("code");
  const pre = h("pre", { class: "highlight", "aria-hidden": "true" }, code);
  const gutter = h("div", { class: "gutter", "aria-hidden": "true" });
  const textarea = h("textarea", { class: "source", spellcheck: "false", autocapitalize: "off", autocomplete: "off",
    "aria-label": `${label} (Ctrl+Enter runs it)`, wrap: "off" });
  const element = h("div", { class: "editor" }, gutter, h("div", { class: "editor-body" }, pre, textarea));
  let error = null;

  function render() {
    const text = textarea.value;
    const at = error ? offsetOf(text, error.line, error.column) : -1;
    code.innerHTML = highlight(text, at);
    const lines = text.split("\n").length;
    gutter.innerHTML = Array.from({ length: lines }, (_, i) =>
      `<span class="${error && error.line === i + 1 ? "error-line" : ""}">${i + 1}</span>`).join("");
    textarea.rows = Math.min(18, Math.max(5, lines + 1));
    syncScroll();
  }
  function syncScroll() {
    pre.scrollTop = textarea.scrollTop;
    pre.scrollLeft = textarea.scrollLeft;
    gutter.scrollTop = textarea.scrollTop;
  }

  textarea.addEventListener("input", () => {
    error = null;
    render();
    onInput?.(textarea.value);
  });
  textarea.addEventListener("scroll", syncScroll);
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      onRun?.();
    }
  });
  textarea.value = value;
  render();

  return {
    element,
    textarea,
    get value() {
      return textarea.value;
    },
    setValue(text) {
      textarea.value = text;
      error = null;
      render();
    },
    setError(where) {
      error = where && where.line ? where : null;
      render();
    },
    /** Put the caret at a 1-based line and column. */
    moveTo(line, column) {
      const at = offsetOf(textarea.value, line, column);
      textarea.focus();
      textarea.setSelectionRange(at, at);
    },
    focus() {
      textarea.focus();
    },
  };
}
