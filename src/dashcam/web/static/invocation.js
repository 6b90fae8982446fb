// Invocation detail: one model call — its conversation rendered readably, its numbers, its error,
// and the raw record one click away. When the event's log group has a masking policy that keeps
// encrypted originals, an admin on the group can unmask it (POST /api/v1/unmask, audited by the
// server); the original is shown only on request, marked as unmasked, and never kept by the page.

import { globMatch, isAdminOn } from "./app.js";
import { conversationOf } from "./conversation.js";
import { fmtInt, fmtMs, fmtUsd, h, localTime, modelLabel, parseResultTime, timeZoneName } from "./format.js";
import { empty, failure, loading, quiet, show } from "./ui.js";

export const TITLE = "Invocation";

export function mount(root, ctx) {
  const ptr = ctx.currentParams().get("ptr");
  const body = h("div", { class: "invocation" });
  root.append(body);
  let controller = null;
  let original = null; // {message, record, at} once an admin unmasked this event: kept across auto-refresh

  async function reload() {
    if (!ptr) {
      show(body, empty("No invocation chosen. Run a query on the Query page and open one of its rows."));
      return;
    }
    controller?.abort();
    controller = new AbortController();
    if (!body.children.length) show(body, loading("Loading the invocation…"));
    try {
      const { signal } = controller;
      const [event, who, protection] = await Promise.all([
        ctx.api(`/api/v1/event?ptr=${encodeURIComponent(ptr)}`, { signal }),
        ctx.whoami(signal),
        // Only what the unmask control needs; the event is worth showing without it.
        ctx.api("/api/v1/protection", { signal }).catch((error) => { if (quiet(error)) throw error; return null; }),
      ]);
      const policy = policyFor(protection?.policies || [], event.logGroup);
      draw(body, event, ctx, { who, policy, original, unmasked: (value) => { original = value; } });
    } catch (error) {
      if (!quiet(error)) show(body, failure(error));
    }
  }

  reload();
  return { reload, dispose: () => controller?.abort() };
}

/** The policy that applies to a log group, as the server picks it: its exact name, else the longest pattern. */
function policyFor(policies, group) {
  const exact = policies.find((p) => p.logGroup === group);
  if (exact) return exact;
  const matching = policies.filter((p) => globMatch(p.logGroup, group))
    .sort((a, b) => b.logGroup.length - a.logGroup.length || (a.logGroup < b.logGroup ? -1 : 1));
  return matching[0] || null;
}

function draw(el, event, ctx, protection) {
  const record = event.record || {};
  const derived = event.derived || {};
  const input = record.input || {};
  const output = record.output || {};
  const at = parseResultTime(event.timestamp);
  const failed = record.errorCode || record.errorMessage;

  const head = h("div", { class: "page-head" },
    h("div", {},
      h("p", { class: "crumbs" }, h("a", { href: "#", onclick: (e) => { e.preventDefault(); history.length > 1 ? history.back() : ctx.navigate(ctx.pageUrl("/query")); } }, "← Back")),
      h("h1", {}, `${record.operation || "Invocation"} · `, h("span", { title: record.modelId || "" }, modelLabel(record.modelId)))),
    h("span", { class: `pill ${failed ? (derived.throttled ? "warn" : "bad") : "good"}` },
      failed ? record.errorCode || "Error" : "Success"));

  const numbers = [
    ["Latency", fmtMs(derived.latencyMs)],
    ["Time to first token", fmtMs(derived.timeToFirstTokenMs)],
    ["Input tokens", fmtInt(input.inputTokenCount)],
    ["Output tokens", fmtInt(output.outputTokenCount)],
    ["Cache read tokens", fmtInt(input.cacheReadInputTokenCount)],
    ["Cache write tokens", fmtInt(input.cacheWriteInputTokenCount)],
    ["Cost", derived.costUsd == null ? "unpriced" : fmtUsd(derived.costUsd)],
    ["Stop reason", derived.stopReason || "–"],
  ];
  const tiles = h("section", { class: "tiles compact", "aria-label": "Numbers" },
    numbers.map(([label, value]) => h("div", { class: "tile" }, h("div", { class: "tile-label" }, label), h("div", { class: "tile-value" }, value))));

  const facts = [
    ["Time", `${localTime(at)} ${timeZoneName()}`],
    ["UTC", event.timestamp],
    ["Request id", record.requestId],
    ["Caller", record.identity?.arn],
    ["Region", [record.region, record.inferenceRegion && record.inferenceRegion !== record.region ? `served in ${record.inferenceRegion}` : null].filter(Boolean).join(", ")],
    ["Application", derived.app],
    ["User", derived.userId],
    ["Session", derived.sessionId],
    ["Trace", derived.traceId],
    ["Source", [derived.provider, derived.source].filter(Boolean).join(" · ")],
    ["Log", `${event.logGroup} / ${event.logStream}`],
  ].filter(([, value]) => value);
  const details = h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));

  const errorBox = failed ? h("div", { class: "state failure", role: "alert" },
    h("strong", {}, record.errorCode || "Error"), record.errorMessage ? `: ${record.errorMessage}` : "",
    derived.throttled ? " — the request was throttled (too many requests or tokens for the model's quota)." : "") : null;

  const rawPre = h("pre", { class: "raw", hidden: true, tabindex: "0", "aria-label": "Raw record JSON" });
  const toggle = h("button", { type: "button", class: "secondary", "aria-expanded": "false", "aria-controls": "raw-json" }, "Show raw JSON");
  rawPre.id = "raw-json";
  toggle.addEventListener("click", () => {
    rawPre.hidden = !rawPre.hidden;
    toggle.setAttribute("aria-expanded", String(!rawPre.hidden));
    toggle.textContent = rawPre.hidden ? "Show raw JSON" : "Show conversation";
    conversationBox.hidden = !rawPre.hidden;
  });
  const copy = h("button", { type: "button", class: "secondary", onclick: async () => {
    await navigator.clipboard?.writeText(shown.message);
    copy.textContent = "Copied";
    setTimeout(() => (copy.textContent = "Copy JSON"), 1500);
  } }, "Copy JSON");

  const conversationBox = h("div", { class: "conversation" });
  const title = h("h2", {}, "Conversation");
  const banner = h("div", { class: "unmasked-banner", role: "status", hidden: true });
  const card = h("section", { class: "card conversation-card" },
    h("div", { class: "card-head" }, title, h("div", { class: "actions" }, toggle, copy)), banner, conversationBox, rawPre);
  let shown = null;
  // What the card shows: the event as stored (masked), or the original an admin asked for.
  const showVersion = (version) => {
    shown = version;
    conversationBox.replaceChildren(...renderConversation(conversationOf(version.record || {})));
    rawPre.textContent = JSON.stringify(version.record ?? version.message, null, 2);
    const unmasked = version !== stored;
    card.classList.toggle("unmasked", unmasked);
    title.textContent = unmasked ? "Conversation · unmasked original" : "Conversation";
    banner.hidden = !unmasked;
    if (unmasked) {
      show(banner, h("strong", {}, "Unmasked original. "),
        `Fetched at ${localTime(version.at)}; the request is recorded in the audit log. `,
        "The conversation and raw JSON show the event before masking; the store keeps only the masked event.");
    }
  };
  const stored = { message: event.message, record: event.record };
  const protectionBar = protectionNote(event, protection, stored, showVersion, ctx);
  showVersion(protection.original || stored);
  show(el, head, errorBox, tiles, protectionBar,
    h("div", { class: "invocation-layout" }, card,
      h("section", { class: "card" }, h("h2", {}, "Details"), details)));
}

/** The masking policy's note, and for a group that keeps originals the Unmask control (admins on
 * the group) or the reason it is not offered. */
function protectionNote(event, { who, policy, original, unmasked }, stored, showVersion, ctx) {
  if (!policy) return null;
  const words = [`Log group ${event.logGroup} is masked at ingest by the policy of `, h("code", {}, policy.logGroup),
    ": what its detectors find is stored as ", h("code", {}, policy.mask), "."];
  if (!policy.keepOriginal) {
    return h("div", { class: "note protection-note", "data-protection": "no-originals" }, ...words,
      " No original is kept, so masked values cannot be recovered.");
  }
  if (!isAdminOn(who, event.logGroup)) {
    const reason = `Unmasking needs an admin key on ${event.logGroup}.`;
    return h("div", { class: "note protection-note", "data-protection": "read-only" }, h("span", {}, ...words, " An encrypted original is kept."),
      h("span", { class: "unmask-control" },
        h("button", { type: "button", class: "secondary small", id: "unmask", disabled: true, "aria-describedby": "unmask-reason" }, "Unmask"),
        h("span", { id: "unmask-reason", class: "muted" }, reason)));
  }
  let current = original;
  let busy = false; // the button stays enabled while asking, so keyboard focus stays on it
  const status = h("span", { class: "unmask-status", role: "status" });
  const button = h("button", { type: "button", class: "secondary small", id: "unmask" }, current ? "Show masked" : "Unmask");
  const setShowing = (value) => {
    current = value;
    unmasked(value);
    showVersion(value || stored);
    button.textContent = value ? "Show masked" : "Unmask";
  };
  button.addEventListener("click", async () => {
    status.textContent = "";
    status.setAttribute("role", "status");
    if (current) {
      setShowing(null);
      return;
    }
    if (busy) return;
    busy = true;
    status.textContent = "Unmasking…";
    try {
      const [answer] = await ctx.api("/api/v1/unmask", { method: "POST", body: { ptrs: [event.ptr] } });
      if (!answer?.found) {
        status.textContent = "No original was kept for this event: it had nothing to mask, or it was stored before its group kept originals.";
        return;
      }
      let record = null;
      try {
        record = JSON.parse(answer.message);
      } catch {
        record = null; // not JSON: the raw view shows the text
      }
      status.textContent = "";
      setShowing({ message: answer.message, record, at: Date.now() });
    } catch (error) {
      if (!quiet(error)) {
        status.setAttribute("role", "alert");
        status.textContent = `Could not unmask: ${error.message}`;
      }
    } finally {
      busy = false;
    }
  });
  return h("div", { class: "note protection-note", "data-protection": "unmaskable" },
    h("span", {}, ...words, " An encrypted original is kept; as an admin on this group you may see it (each unmask is audited)."),
    h("span", { class: "unmask-control" }, button, status));
}

function renderConversation(c) {
  const blocks = [];
  if (c.notes.length) blocks.push(h("div", { class: "note" }, c.notes.join(" ")));
  if (Object.keys(c.settings).length) {
    blocks.push(h("p", { class: "settings" }, Object.entries(c.settings).map(([k, v]) => h("span", { class: "setting" }, `${k}: ${v}`))));
  }
  if (c.system.length) blocks.push(turn("system", "System", c.system.map((t) => ({ type: "text", text: t }))));
  for (const message of c.messages) blocks.push(turn(message.role, roleName(message.role), message.parts));
  if (c.response) {
    blocks.push(turn("response", `Response${c.response.stop ? ` · stopped: ${c.response.stop}` : ""}`, c.response.parts));
  }
  if (c.tools.length) {
    blocks.push(h("details", { class: "tools" }, h("summary", {}, `Tools offered (${c.tools.length})`),
      h("ul", {}, c.tools.map((t) => h("li", {}, h("code", {}, t.name), t.description ? ` — ${t.description}` : "")))));
  }
  if (!c.system.length && !c.messages.length && !c.response) blocks.push(h("p", { class: "muted" }, "This record has no request or response body (body logging may be off)."));
  return blocks;
}

function roleName(role) {
  return { user: "User", assistant: "Assistant", tool: "Tool result", system: "System" }[role] || role;
}

function turn(kind, title, parts) {
  return h("article", { class: `turn turn-${kind}` }, h("h3", {}, title), parts.map(part));
}

function part(p) {
  if (p.type === "text") return h("div", { class: `text${p.reasoning ? " reasoning" : ""}` }, p.text);
  if (p.type === "tool_call") {
    return h("div", { class: "tool-call" }, h("div", { class: "tool-head" }, "Tool call ", h("code", {}, p.name || "?"), p.id ? h("span", { class: "muted" }, ` ${p.id}`) : ""),
      h("pre", {}, typeof p.input === "string" ? p.input : JSON.stringify(p.input ?? {}, null, 2)));
  }
  if (p.type === "tool_result") {
    return h("div", { class: `tool-result${p.error ? " error" : ""}` }, h("div", { class: "tool-head" }, p.error ? "Tool error" : "Tool result", p.id ? h("span", { class: "muted" }, ` ${p.id}`) : ""),
      h("pre", {}, p.content));
  }
  if (p.type === "media") return h("div", { class: "media muted" }, p.text);
  return h("pre", { class: "json" }, JSON.stringify(p.value, null, 2));
}
