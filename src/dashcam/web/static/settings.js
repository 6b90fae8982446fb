// Settings: keys, prices, retention per log group, masking policies (with what they masked since
// the server started) and the audit log — shown to every reader, changed by admins (an admin key
// over every log group for keys and prices; admin on a group for its retention and policy). Every
// change is audited by the server; the audit log is shown to admins over every log group.

import { isAdminOn, isFullAdmin } from "./app.js";
import { fmtCompact, fmtInt, h, localTime, modelLabel } from "./format.js";
import { empty, failure, loading, quiet, show } from "./ui.js";

export const TITLE = "Settings";

const ROLES = [["read", "read — query and view"], ["ingest", "ingest — send records"], ["admin", "admin — everything"]];
// CloudWatch Logs' retention values (src/dashcam/store/base.py RETENTION_DAYS).
const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];
const UNPRICED_QUERY = "filter not ispresent(costUsd) and (ispresent(input.inputTokenCount) or ispresent(output.outputTokenCount))"
  + " | stats count(*) as calls by modelId | sort calls desc";

export function mount(root, ctx) {
  const whoBox = h("div", { class: "card who" });
  const keysBox = h("div");
  const pricesBox = h("div");
  const retentionBox = h("div");
  const maskingBox = h("div");
  const auditBox = h("div");
  const sections = [["keys", "Keys"], ["prices", "Prices"], ["retention", "Retention"], ["masking", "Masking"], ["audit", "Audit log"]];
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Settings"),
      h("nav", { class: "section-links", "aria-label": "Settings sections" },
        sections.map(([id, title]) => h("a", { href: `#${id}` }, title)))),
    whoBox,
    section("keys", "Keys", keysBox),
    section("prices", "Prices", pricesBox),
    section("retention", "Retention", retentionBox),
    section("masking", "Masking", maskingBox),
    section("audit", "Audit log", auditBox));
  let controller = null;
  let who = null;

  async function reload() {
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    if (!whoBox.children.length) show(whoBox, loading("Loading settings…"));
    try {
      who = await ctx.whoami(signal);
      drawWho();
      await Promise.all([drawKeys(signal), drawPrices(signal), drawRetention(signal), drawMasking(signal), drawAudit(signal)]);
    } catch (error) {
      if (!quiet(error)) show(whoBox, failure(error));
    }
  }

  const fullAdmin = () => isFullAdmin(who);
  const adminOn = (group) => isAdminOn(who, group);

  function drawWho() {
    const text = who.secured
      ? [`You are using key `, h("code", {}, who.keyId), ` (role `, h("strong", {}, who.role), `, log groups `, h("code", {}, who.logGroups), ").",
        who.role === "admin" ? "" : " Settings are shown read-only: changing them needs an admin key."]
      : ["This server has no keys: it answers only on this machine, and everyone using it acts as an admin. ",
        "Create a key below to require one."];
    show(whoBox, h("p", { "data-role": who.role, class: "who-text" }, text));
  }

  // ------------------------------------------------------------------ keys

  async function drawKeys(signal) {
    if (!fullAdmin()) {
      show(keysBox, empty("Only an admin key over every log group sees and manages keys."));
      return;
    }
    const keys = await ctx.api("/api/v1/keys", { signal });
    const rows = keys.map((k) => h("tr", { "data-key": k.id, class: k.revokedMs ? "revoked" : "" },
      h("td", {}, h("code", {}, k.id)), h("td", {}, k.role), h("td", {}, h("code", {}, k.logGroups)),
      h("td", { class: "wrap" }, k.description || ""), h("td", {}, localTime(k.createdMs)),
      h("td", {}, k.revokedMs ? `revoked ${localTime(k.revokedMs)}` : k.id === who.keyId ? "active (this key)" : "active"),
      h("td", {}, k.revokedMs ? "" : h("button", { type: "button", class: "secondary small danger", onclick: () => revokeKey(k) }, "Revoke"))));
    const table = keys.length ? tableOf(["Key id", "Role", "Log groups", "Description", "Created", "Status", ""], rows, "keys-table")
      : empty("No keys: the server is open to anyone on this machine.");
    show(keysBox, table, newKeyForm(keys.length === 0));
  }

  function newKeyForm(first) {
    const role = h("select", { id: "key-role" }, ROLES.map(([v, t]) => h("option", { value: v }, t)));
    const groups = h("input", { type: "text", id: "key-groups", value: "*", size: 18 });
    const description = h("input", { type: "text", id: "key-description", placeholder: "what it is for", size: 24 });
    const result = h("div", { class: "new-key", role: "status" });
    const create = async () => {
      result.replaceChildren();
      try {
        const key = await ctx.api("/api/v1/keys", { method: "POST", body: { role: role.value, logGroups: groups.value || "*", description: description.value } });
        show(result, h("div", { class: "note secret" },
          h("p", {}, h("strong", {}, `Key ${key.id} created. `), "Copy it now: its secret is not shown again."),
          h("p", {}, "Bearer token: ", h("input", { type: "text", readonly: true, value: key.bearer, class: "secret-value", size: 60, "aria-label": "Bearer token" })),
          h("p", { class: "muted" }, "For boto3 and the AWS CLI: access key id ", h("code", {}, key.awsAccessKeyId), ", secret access key ",
            h("code", {}, key.awsSecretAccessKey), ".")));
        const keep = result;
        await drawKeys();
        keysBox.append(keep);
        refreshAudit();
      } catch (error) {
        if (!quiet(error)) show(result, failure(error));
      }
    };
    return h("div", { class: "form-block" },
      h("h3", {}, "Create a key"),
      first ? h("p", { class: "note" }, "The first key secures the server: from then on every request, this page's too, needs a key. Create an admin key and keep it.") : null,
      h("div", { class: "form-row" }, h("label", {}, "Role ", role), h("label", {}, "Log groups ", groups),
        h("label", {}, "Description ", description), h("button", { type: "button", id: "key-create", onclick: create }, "Create key")),
      result);
  }

  async function revokeKey(key) {
    const self = key.id === who.keyId ? " This is the key you are using: the page will ask for another." : "";
    if (!window.confirm(`Revoke key ${key.id}? It stops working at once.${self}`)) return;
    try {
      await ctx.api(`/api/v1/keys/${encodeURIComponent(key.id)}`, { method: "DELETE" });
      await drawKeys();
      refreshAudit();
    } catch (error) {
      if (!quiet(error)) keysBox.prepend(failure(error));
    }
  }

  // ------------------------------------------------------------------ prices

  async function drawPrices(signal) {
    const range = await ctx.resolveRange(signal);
    const [prices, unpriced] = await Promise.all([
      ctx.api("/api/v1/prices", { signal }),
      ctx.runQuery(UNPRICED_QUERY, { start: range.start, end: range.end, signal, limit: 100 }).catch(() => null),
    ]);
    const admin = fullAdmin();
    const filter = h("input", { type: "search", placeholder: "Filter models", "aria-label": "Filter prices by model", id: "price-filter" });
    const usd = (v) => (v == null ? "–" : `$${v.toLocaleString("en-US", { maximumFractionDigits: 4 })}`);
    const rows = prices.prices.map((p) => h("tr", { "data-price": p.model, "data-source": p.source },
      h("td", { title: p.model }, p.model), h("td", { class: "num" }, usd(p.input)), h("td", { class: "num" }, usd(p.output)),
      h("td", { class: "num" }, usd(p.cacheRead)), h("td", { class: "num" }, usd(p.cacheWrite)), h("td", {}, p.effective || "always"),
      h("td", {}, h("span", { class: `badge ${p.source}` }, p.source)),
      h("td", {}, admin ? [
        h("button", { type: "button", class: "secondary small", onclick: () => fillPrice(p) }, "Change"),
        p.source === "override" ? h("button", { type: "button", class: "secondary small danger", onclick: () => removeOverride(p) }, "Remove") : null,
      ] : null)));
    filter.addEventListener("input", () => {
      const needle = filter.value.toLowerCase();
      for (const row of rows) row.hidden = needle && !row.dataset.price.toLowerCase().includes(needle);
    });
    const table = tableOf(["Model", "Input", "Output", "Cache read", "Cache write", "From", "Source", ""], rows, "prices-table");
    const missing = unpriced?.rows?.length
      ? h("div", { class: "note unpriced" }, h("strong", {}, `${unpriced.rows.length} model${unpriced.rows.length === 1 ? "" : "s"} in this range have no price: `),
        unpriced.rows.map((r, i) => [i ? ", " : "", admin ? h("button", { type: "button", class: "link", onclick: () => fillPrice({ model: r.modelId }) }, modelLabel(r.modelId))
          : modelLabel(r.modelId), ` (${fmtInt(r.calls)} calls)`]), ". Their cost is unknown, never $0.")
      : null;
    show(pricesBox,
      h("p", { class: "page-note" }, `USD per million tokens. Catalog ${prices.version}; overrides live in ${prices.file} in the data directory.`),
      missing, h("div", { class: "form-row" }, filter), h("div", { class: "table-wrap short" }, table.querySelector("table")),
      admin ? priceForm() : null);
  }

  let priceFields = null;

  function priceForm() {
    const input = (id, label, attrs = {}) => h("label", {}, label, " ", h("input", { id, ...attrs }));
    const number = { type: "number", min: "0", step: "any", size: 8 };
    const form = h("div", { class: "form-block", id: "price-form" },
      h("h3", {}, "Set a price override"),
      h("div", { class: "form-row" },
        input("price-model", "Model", { type: "text", size: 36, placeholder: "anthropic.claude-..." }),
        input("price-input", "Input", number), input("price-output", "Output", number),
        input("price-cache-read", "Cache read", number), input("price-cache-write", "Cache write", number),
        input("price-effective", "From", { type: "date" }),
        h("button", { type: "button", id: "price-save", onclick: savePrice }, "Save price")),
      h("p", { class: "form-error", role: "alert", id: "price-error" }),
      h("p", { class: "page-note" }, "New records are priced with it at once; stored ones keep their cost until you reprice them. ",
        h("button", { type: "button", class: "secondary small", id: "price-reprice", onclick: reprice }, "Reprice stored events"),
        h("span", { id: "reprice-status", role: "status" })));
    priceFields = form;
    return form;
  }

  function fillPrice(price) {
    const set = (id, value) => { priceFields.querySelector(`#${id}`).value = value ?? ""; };
    set("price-model", price.model);
    set("price-input", price.input);
    set("price-output", price.output);
    set("price-cache-read", price.cacheRead);
    set("price-cache-write", price.cacheWrite);
    set("price-effective", price.source === "override" ? price.effective : "");
    priceFields.scrollIntoView({ block: "center" });
    priceFields.querySelector("#price-input").focus();
  }

  async function savePrice() {
    const get = (id) => priceFields.querySelector(`#${id}`).value.trim();
    const error = priceFields.querySelector("#price-error");
    error.textContent = "";
    const number = (id) => (get(id) === "" ? null : Number(get(id)));
    const body = { input: number("price-input"), output: number("price-output"), cacheRead: number("price-cache-read"),
      cacheWrite: number("price-cache-write"), effective: get("price-effective") || null };
    if (!get("price-model") || body.input == null || body.output == null) {
      error.textContent = "A price needs a model, an input and an output price.";
      return;
    }
    try {
      await ctx.api(`/api/v1/prices/${encodeURIComponent(get("price-model"))}`, { method: "PUT", body });
      await drawPrices();
      refreshAudit();
    } catch (err) {
      if (!quiet(err)) error.textContent = err.message;
    }
  }

  async function removeOverride(price) {
    if (!window.confirm(`Remove the override of ${price.model}${price.effective ? ` from ${price.effective}` : ""}?`)) return;
    const query = price.effective ? `?effective=${encodeURIComponent(price.effective)}` : "";
    try {
      await ctx.api(`/api/v1/prices/${encodeURIComponent(price.model)}${query}`, { method: "DELETE" });
      await drawPrices();
      refreshAudit();
    } catch (error) {
      if (!quiet(error)) pricesBox.prepend(failure(error));
    }
  }

  async function reprice() {
    const status = priceFields.querySelector("#reprice-status");
    status.textContent = " Repricing…";
    try {
      const answer = await ctx.api("/api/v1/prices/reprice", { method: "POST", body: {} });
      status.textContent = ` ${fmtInt(answer.repriced)} events repriced.`;
      refreshAudit();
    } catch (error) {
      if (!quiet(error)) status.textContent = ` ${error.message}`;
    }
  }

  // ------------------------------------------------------------------ retention

  async function drawRetention(signal) {
    const groups = await ctx.api("/api/v1/log-groups", { signal });
    if (!groups.length) {
      show(retentionBox, empty("No log groups yet."));
      return;
    }
    const rows = groups.map((g) => {
      let cell;
      if (adminOn(g.name)) {
        const choice = h("select", { "aria-label": `Retention of ${g.name}`, "data-retention": g.name },
          h("option", { value: "", selected: g.retentionInDays == null }, "Never expire"),
          RETENTION_DAYS.map((d) => h("option", { value: String(d), selected: g.retentionInDays === d }, daysWords(d))));
        const note = h("span", { class: "muted", role: "status" });
        choice.addEventListener("change", async () => {
          note.textContent = "";
          try {
            await ctx.api(`/api/v1/log-groups/${encodeURIComponent(g.name)}/retention`, { method: "PUT",
              body: { days: choice.value ? Number(choice.value) : null } });
            note.textContent = " saved";
            refreshAudit();
          } catch (error) {
            if (!quiet(error)) note.textContent = ` ${error.message}`;
          }
        });
        cell = [choice, note];
      } else cell = g.retentionInDays == null ? "Never expire" : daysWords(g.retentionInDays);
      return h("tr", { "data-group": g.name }, h("td", {}, h("code", {}, g.name)), h("td", { class: "num" }, fmtInt(g.events)),
        h("td", { class: "num" }, `${fmtCompact(g.storedBytes)}B`), h("td", {}, localTime(g.createdMs)), h("td", {}, cell));
    });
    show(retentionBox, h("p", { class: "page-note" }, "Events older than their group's retention are deleted in the background, "
      + "with the originals kept for unmasking."), tableOf(["Log group", "Events", "Stored", "Created", "Keep events"], rows, "retention-table"));
  }

  // ------------------------------------------------------------------ masking

  async function drawMasking(signal) {
    const [protection, groups] = await Promise.all([ctx.api("/api/v1/protection", { signal }), ctx.api("/api/v1/log-groups", { signal })]);
    const rows = protection.policies.map((p) => h("tr", { "data-policy": p.logGroup },
      h("td", {}, h("code", {}, p.logGroup)),
      h("td", { class: "wrap" }, [...p.detectors, ...p.custom.map((c) => `${c.name} (custom)`)].join(", ") || "none"),
      h("td", {}, h("code", {}, p.mask)), h("td", {}, p.keepOriginal ? "kept, encrypted" : "not kept"),
      h("td", {}, Object.entries(p.bodies).filter(([, on]) => !on).map(([kind]) => kind).join(", ") || "none"),
      h("td", {}, adminOn(p.logGroup) ? [
        h("button", { type: "button", class: "secondary small", onclick: () => policyForm(p) }, "Change"),
        h("button", { type: "button", class: "secondary small danger", onclick: () => removePolicy(p) }, "Remove")] : null)));
    const table = rows.length ? tableOf(["Log group", "Masks", "Mask text", "Originals", "Bodies dropped", ""], rows, "masking-table")
      : empty("No masking policy: events are stored as they arrive.");
    const detectors = tableOf(["Detector", "Finds"], protection.detectors.map((d) => h("tr", {}, h("td", {}, h("code", {}, d.name)), h("td", { class: "wrap" }, d.description))), "detectors-table");
    show(maskingBox, h("p", { class: "page-note" }, "Policies mask what their detectors find before events are stored; they apply to events ingested after they are set."),
      table, who.role === "admin" ? h("button", { type: "button", class: "secondary", id: "policy-new", onclick: () => policyForm(null, groups) }, "Add a policy") : null,
      h("div", { id: "policy-form-box" }),
      maskCounts(protection.counts),
      h("details", { class: "detectors" }, h("summary", {}, "Built-in detectors"), detectors));
    maskingBox.detectorList = protection.detectors;
  }

  /** What was masked and dropped in each log group since the server started (also on /metrics). */
  function maskCounts(counts) {
    const groups = new Map();
    for (const row of counts) {
      const group = groups.get(row.logGroup) || { masked: [], dropped: [], findings: 0 };
      group[row.kind]?.push(`${row.name} ${fmtInt(row.count)}`);
      if (row.kind === "masked") group.findings += row.count;
      groups.set(row.logGroup, group);
    }
    const rows = [...groups].map(([name, g]) => h("tr", { "data-mask-counts": name },
      h("td", {}, h("code", {}, name)), h("td", { class: "num" }, fmtInt(g.findings)),
      h("td", { class: "wrap" }, g.masked.join(", ") || "–"), h("td", { class: "wrap" }, g.dropped.join(", ") || "–")));
    return h("div", { class: "form-block", id: "mask-counts" },
      h("h3", {}, "Masked since the server started"),
      rows.length ? tableOf(["Log group", "Findings masked", "By detector", "Body data dropped"], rows, "mask-counts-table")
        : empty("Nothing masked or dropped since the server started."),
      h("p", { class: "page-note" }, "Counts of events received (re-deliveries included), per log group; Prometheus reads them on /metrics as ",
        h("code", {}, "dashcam_protection_masked_findings_total"), " and ", h("code", {}, "dashcam_protection_dropped_body_items_total"), "."));
  }

  function policyForm(policy, groups = []) {
    const box = maskingBox.querySelector("#policy-form-box");
    const detectors = maskingBox.detectorList || [];
    const group = h("input", { type: "text", id: "policy-group", value: policy?.logGroup || "", size: 36, list: "policy-groups",
      readonly: policy ? true : null, placeholder: "/aws/bedrock/* or a group name" });
    const datalist = h("datalist", { id: "policy-groups" }, groups.map((g) => h("option", { value: g.name })));
    const checks = detectors.map((d) => h("label", { class: "check" }, h("input", { type: "checkbox", value: d.name,
      checked: policy ? policy.detectors.includes(d.name) : ["email", "credit-card", "aws-secret-key", "aws-access-key"].includes(d.name) }), d.name));
    const mask = h("input", { type: "text", id: "policy-mask", value: policy?.mask || "****", size: 8 });
    const keep = h("input", { type: "checkbox", id: "policy-keep", checked: policy?.keepOriginal === true });
    const bodies = ["text", "image", "embedding"].map((kind) => h("label", { class: "check" },
      h("input", { type: "checkbox", value: kind, checked: policy ? policy.bodies[kind] : true }), `keep ${kind} bodies`));
    const custom = h("textarea", { id: "policy-custom", class: "code", rows: 3, placeholder: "ticket=TICKET-\\d{6}  (one NAME=REGEX a line)" },
      (policy?.custom || []).map((c) => `${c.name}=${c.regex}`).join("\n"));
    const error = h("p", { class: "form-error", role: "alert" });
    const save = async () => {
      error.textContent = "";
      const customs = custom.value.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
        const at = line.indexOf("=");
        return { name: line.slice(0, at).trim(), regex: line.slice(at + 1) };
      });
      if (customs.some((c) => !c.name)) {
        error.textContent = "Write each custom pattern as NAME=REGEX.";
        return;
      }
      const body = { detectors: checks.map((c) => c.querySelector("input")).filter((i) => i.checked).map((i) => i.value),
        custom: customs, mask: mask.value, keepOriginal: keep.checked,
        bodies: Object.fromEntries(bodies.map((b) => b.querySelector("input")).map((i) => [i.value, i.checked])) };
      try {
        await ctx.api(`/api/v1/protection?logGroup=${encodeURIComponent(group.value.trim())}`, { method: "PUT", body });
        await drawMasking();
        refreshAudit();
      } catch (err) {
        if (!quiet(err)) error.textContent = err.message;
      }
    };
    show(box, h("div", { class: "form-block", id: "policy-form" },
      h("h3", {}, policy ? `Change the policy of ${policy.logGroup}` : "Add a masking policy"),
      h("div", { class: "form-row" }, h("label", {}, "Log group ", group), datalist, h("label", {}, "Mask with ", mask),
        h("label", { class: "check" }, keep, "keep encrypted originals (admins can unmask)")),
      h("div", { class: "checks" }, h("span", { class: "muted" }, "Detectors:"), checks),
      h("div", { class: "checks" }, h("span", { class: "muted" }, "Bodies:"), bodies),
      h("label", { class: "stacked" }, "Custom patterns", custom), error,
      h("div", { class: "actions" }, h("button", { type: "button", id: "policy-save", onclick: save }, "Save policy"),
        h("button", { type: "button", class: "secondary", onclick: () => show(box) }, "Cancel"))));
    group.focus();
  }

  async function removePolicy(policy) {
    if (!window.confirm(`Remove the masking policy of ${policy.logGroup}? Events already stored stay masked.`)) return;
    try {
      await ctx.api(`/api/v1/protection?logGroup=${encodeURIComponent(policy.logGroup)}`, { method: "DELETE" });
      await drawMasking();
      refreshAudit();
    } catch (error) {
      if (!quiet(error)) maskingBox.prepend(failure(error));
    }
  }

  // ------------------------------------------------------------------ audit log

  let auditAction = "";

  async function drawAudit(signal) {
    if (!fullAdmin()) {
      show(auditBox, empty("Only an admin key over every log group sees the audit log (it covers every log group)."));
      return;
    }
    if (!auditBox.children.length) show(auditBox, loading("Loading the audit log…"));
    const query = new URLSearchParams({ limit: String(AUDIT_LIMIT) });
    if (auditAction) query.set("action", auditAction);
    const entries = (await ctx.api(`/api/v1/audit?${query}`, { signal })).reverse(); // the API answers oldest first
    const filter = h("select", { id: "audit-action", "aria-label": "Show audit entries of" },
      AUDIT_ACTIONS.map(([value, label]) => h("option", { value, selected: value === auditAction }, label)));
    filter.addEventListener("change", () => { auditAction = filter.value; refreshAudit(); });
    const rows = entries.map((e) => h("tr", { "data-audit": e.seq, "data-action": e.action, class: `outcome-${e.outcome}` },
      h("td", {}, localTime(e.time_ms)),
      h("td", {}, h("code", {}, e.actor), e.actor === who.keyId ? h("span", { class: "muted" }, " (you)") : null),
      h("td", {}, h("code", {}, e.action)), h("td", { class: "wrap" }, e.target || "–"),
      h("td", {}, h("span", { class: `badge outcome ${e.outcome}` }, e.outcome)),
      h("td", { class: "wrap details", title: JSON.stringify(e.details) }, detailsText(e.details))));
    show(auditBox,
      h("p", { class: "page-note" }, `Every admin action, newest first (the latest ${AUDIT_LIMIT}). The log is audit.jsonl in the data directory; `,
        h("code", {}, "dashcam audit --verify"), " checks that no line was changed or removed."),
      h("div", { class: "form-row" }, h("label", {}, "Show ", filter),
        h("button", { type: "button", class: "secondary small", id: "audit-refresh", onclick: refreshAudit }, "Refresh")),
      rows.length
        ? h("div", { class: "table-wrap short" }, tableOf(["Time", "Actor", "Action", "Target", "Outcome", "Details"], rows, "audit-table").firstChild)
        : empty(auditAction ? "No entries of this kind." : "No admin action recorded yet."));
  }

  /** Redraw the audit log after a change made on this page (the server has just recorded it). */
  function refreshAudit() {
    return drawAudit().catch((error) => { if (!quiet(error)) show(auditBox, failure(error)); });
  }

  reload();
  return { reload, dispose: () => controller?.abort() };
}

const AUDIT_LIMIT = 200;
// The API's action filter: an exact action, or a prefix ending in "." (src/dashcam/audit.py).
const AUDIT_ACTIONS = [["", "all actions"], ["key.", "keys"], ["protection.", "masking policies"], ["unmask", "unmasks"],
  ["retention.", "retention"], ["price.", "prices"], ["events.reprice", "repricing"], ["log-group.delete", "log group deletions"],
  ["unmask-key.rotate", "unmask key rotations"]];

/** An entry's details as "key: value" pairs (never a secret: the server does not record any). */
function detailsText(details) {
  const pairs = Object.entries(details || {}).map(([k, v]) => `${k}: ${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`);
  return pairs.join(", ") || "–";
}

function section(id, title, content) {
  return h("section", { class: "card settings-section", id, "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title` }, title), content);
}

function tableOf(columns, rows, className) {
  return h("div", { class: "table-wrap" }, h("table", { class: `results ${className}` },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, rows)));
}

function daysWords(days) {
  if (days % 365 === 0) return `${days / 365} year${days === 365 ? "" : "s"}`;
  return `${days} day${days === 1 ? "" : "s"}`;
}
