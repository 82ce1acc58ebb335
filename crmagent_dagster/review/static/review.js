// The review page: plain DOM, no framework. Text from the warehouse is only ever set as textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const REVIEWER_KEY = "crmagent.review.reviewer";
const STATUS_WORDS = { to_review: "to review", approved: "approved", edited: "edited", rejected: "rejected" };
const DECISION_WORDS = { approve: "Approved", edit: "Edited", reject: "Rejected" };

const state = {
  months: [],        // [{month, segments}]
  items: [],         // what /api/items returned for the filters
  counts: {},
  selected: null,    // aggregate_id + segment of the selected item
  editing: false,
  busy: false,
  loads: 0,          // item requests sent; the page is settled when none is pending (body[data-loading] unset)
};

// ---- small helpers -------------------------------------------------------------------------------------------------

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.entries(props || {}).forEach(([k, v]) => {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  });
  children.filter((c) => c !== null && c !== undefined).forEach((c) =>
    node.append(typeof c === "string" ? document.createTextNode(c) : c));
  return node;
}

function keyOf(item) { return item.segment + "/" + item.aggregate_id; }
function currentItem() { return visibleItems().find((i) => keyOf(i) === state.selected) || null; }
function say(text) { $("message").textContent = text; }

function showBanner(text) {
  $("banner-text").textContent = text;
  $("banner").hidden = false;
}

function when(iso) {
  if (!iso) return "";
  return iso.replace("T", " ").slice(0, 16) + " UTC";
}

async function getJSON(url) {
  const res = await fetch(url, { headers: { Accept: "application/json" } });
  if (res.status === 503) throw new Error(await res.text());
  const data = await res.json();
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

// ---- filters and loading -------------------------------------------------------------------------------------------

function filters() {
  return { month: $("month").value, segment: $("segment").value, status: $("status").value };
}

function rememberFilters() {
  const f = filters();
  const q = new URLSearchParams();
  Object.entries(f).forEach(([k, v]) => { if (v) q.set(k, v); });
  history.replaceState(null, "", "?" + q.toString());
  $("next-month").textContent = f.month || "YYYY-MM";
}

function fillSegments(month) {
  const select = $("segment");
  const keep = select.value;
  const found = state.months.find((m) => m.month === month);
  select.replaceChildren(el("option", { value: "", text: "All segments" }),
    ...((found && found.segments) || []).map((s) => el("option", { value: s, text: s.replace(/_/g, " ") })));
  select.value = found && found.segments.includes(keep) ? keep : "";
}

async function loadMonths() {
  const data = await getJSON("/api/months");
  state.months = data.months;
  const url = new URLSearchParams(location.search);
  const month = url.get("month") || document.body.dataset.defaultMonth || data.default || "";
  $("month").replaceChildren(...data.months.map((m) => el("option", { value: m.month, text: m.month })));
  $("month").value = data.months.some((m) => m.month === month) ? month : (data.default || "");
  fillSegments($("month").value);
  if (url.get("segment")) $("segment").value = url.get("segment");
  if (url.get("status")) $("status").value = url.get("status");
}

async function loadItems(keepSelection) {
  const f = filters();
  rememberFilters();
  if (!f.month) {
    state.items = [];
    render();
    $("empty").textContent = "No rewrites in this warehouse yet: run a month's segments first (crmagent refresh).";
    return;
  }
  const q = new URLSearchParams({ month: f.month, status: f.status });
  if (f.segment) q.set("segment", f.segment);
  // Only the newest request's answer is shown: filters changed quickly must not end on an older list.
  const seq = ++state.loads;
  document.body.dataset.loading = "true";
  try {
    const data = await getJSON("/api/items?" + q.toString());
    if (seq !== state.loads) return;
    state.items = data.items;
    state.counts = data.counts;
    if (!keepSelection || !visibleItems().some((i) => keyOf(i) === state.selected)) {
      const first = visibleItems()[0];
      state.selected = first ? keyOf(first) : null;
    }
    render();
  } finally {
    if (seq === state.loads) delete document.body.dataset.loading;
  }
}

async function reload(keepSelection) {
  $("banner").hidden = true;
  try {
    await loadItems(keepSelection);
  } catch (e) {
    showBanner(e.message);
  }
}

function visibleItems() {
  const needle = $("find").value.trim().toLowerCase();
  if (!needle) return state.items;
  return state.items.filter((i) => [i.template_id, i.aggregate_id, i.shop_id, i.segment, i.original_title,
    i.original_body, i.new_title, i.new_body].some((v) => (v || "").toLowerCase().includes(needle)));
}

function statusLabels() {
  Array.from($("status").options).forEach((o) => {
    const n = state.counts[o.value];
    const base = o.value === "all" ? "All" : STATUS_WORDS[o.value].replace(/^./, (c) => c.toUpperCase());
    o.textContent = n === undefined ? base : `${base} (${n})`;
  });
}

// ---- rendering -----------------------------------------------------------------------------------------------------

function render() {
  statusLabels();
  renderList();
  renderDetail();
}

function decisionBadge(item) {
  if (!item.decision) return el("span", { class: "badge review-to_review", text: "to review" });
  return el("span", { class: "badge review-" + item.review_status,
    text: `${STATUS_WORDS[item.review_status]} · ${item.decision.reviewer}` });
}

function renderList() {
  const items = visibleItems();
  const list = $("list");
  list.replaceChildren(...items.map((item) => {
    const selected = keyOf(item) === state.selected;
    const button = el("button", { type: "button", class: "item", "data-key": keyOf(item),
      "data-aggregate": item.aggregate_id },
      el("span", { class: "tid", text: item.template_id || item.aggregate_id }),
      " ",
      item.status === "ok" ? null : el("span", { class: "badge writer-" + item.status, text: `writer ${item.status}` }),
      decisionBadge(item),
      item.policy_approves ? el("span", { class: "badge policy", title: "the auto-approve policy would approve it",
        text: "policy ✓" }) : null,
      el("span", { class: "snippet", text: item.new_title || item.new_body || item.original_body || "" }));
    if (selected) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => select(keyOf(item), false));
    return el("li", {}, button);
  }));
  const total = state.items.length;
  $("list-summary").textContent = items.length === total ? `${total} rewrite(s)` : `${items.length} of ${total} shown`;
}

function renderDetail() {
  const item = currentItem();
  $("d-body").hidden = !item;
  $("empty").hidden = !!item;
  if (!item) {
    $("empty").textContent = state.items.length ? "Nothing matches the find box." : "Nothing to show for these filters.";
    closeEdit();
    return;
  }
  $("d-heading").textContent = `${item.template_id || item.aggregate_id} · ${item.segment.replace(/_/g, " ")}`;
  $("d-meta").textContent = [`a ${(item.message_kind || "message of unknown kind").replace(/_/g, " ")}`,
    `shop ${item.shop_id || "?"}`, `language ${item.language || "?"}`, `channel ${item.channel || "?"}`,
    `path ${item.path ?? "?"}`, `aggregate ${item.aggregate_id}`].join(" · ");
  $("d-meta").title = item.kind_evidence ? `read as such from ${item.kind_evidence}` : "";
  $("d-status").textContent = item.status === "ok" ? "Writer: accepted (passed every guardrail)."
    : `Writer: ${item.status}: ${item.error || "no reason recorded"}`;
  $("d-status").className = "writer-" + item.status;
  $("d-decision").textContent = item.decision
    ? `${DECISION_WORDS[item.decision.decision]} by ${item.decision.reviewer}, ${when(item.decision.decided_at)}` +
      (item.decision.note ? ` — “${item.decision.note}”` : "")
    : "Not reviewed yet.";
  $("d-policy").textContent = item.policy_approves
    ? "The auto-approve policy would approve it (accepted, every guardrail passed, the judge preferred it in both " +
      "orders): if deployments run with auto_approve, it goes out even when nobody reviews it."
    : "The auto-approve policy would not approve it: it goes out only if someone approves or edits it.";
  $("d-orig-title").textContent = item.original_title || "(no title)";
  $("d-orig-body").textContent = item.original_body || "";
  $("d-new-title").textContent = item.new_title || "(no title)";
  $("d-new-body").textContent = item.new_body || "(no rewrite)";
  $("d-changes").textContent = item.changes.length ? "Changes: " + item.changes.join("; ") : "";
  const edited = item.decision && item.decision.decision === "edit";
  $("d-edited").hidden = !edited;
  if (edited) {
    $("d-edit-title").textContent = item.decision.edited_title || "(no title)";
    $("d-edit-body").textContent = item.decision.edited_body || "";
  }
  $("approve").disabled = !item.can_approve;
  $("approve-why").hidden = item.can_approve;
  $("d-reason").textContent = item.problem_reason || "—";
  $("d-diagnosis").textContent = item.segment_diagnosis || "—";
  renderAudit(item);
  renderChecks($("d-checks"), item.guard_checks);
  renderJudge(item);
  renderHistory(item);
}

function renderAudit(item) {
  const row = (label, a) => el("tr", {}, el("th", { scope: "row", text: label }),
    el("td", { text: a ? a.error_type || "—" : "not audited" }), el("td", { text: a ? a.feedback || "" : "" }),
    el("td", { text: a && a.flags.length ? a.flags.join(", ") : "" }));
  $("d-audit").replaceChildren(row("Original", item.audit_original), row("Rewrite", item.audit_rewrite));
}

function renderChecks(list, checks) {
  if (!checks.length) {
    list.replaceChildren(el("li", { class: "muted", text: "No checks recorded." }));
    return;
  }
  list.replaceChildren(...checks.map((c) => el("li", { class: c.passed ? "pass" : "fail", "data-check": c.name },
    el("span", { class: "mark", text: c.passed ? "✓ pass" : "✗ FAIL" }), " ",
    el("strong", { text: c.name }), ` — ${c.reason}`)));
}

function pick(letter, aIs, bIs) {
  if (letter === "A") return `A (${aIs})`;
  if (letter === "B") return `B (${bIs})`;
  return letter || "—";
}

function renderJudge(item) {
  const v = item.verdicts;
  if (!v) {
    $("d-verdict").textContent = "Not judged (only accepted rewrites are judged).";
    $("d-orders").replaceChildren();
  } else {
    const what = v.verdict === "rewrite" ? "the rewrite is preferred" : v.verdict === "original"
      ? "the original is preferred" : "a tie";
    $("d-verdict").textContent = `Verdict: ${what}` +
      (v.position_consistent ? " (same answer in both orders)." : " — but the two orders disagree, so it does not count.");
    $("d-orders").replaceChildren(
      el("li", { text: `Original shown as A: judge picked ${pick(v.original_as_a, "original", "rewrite")}` }),
      el("li", { text: `Rewrite shown as A: judge picked ${pick(v.rewrite_as_a, "rewrite", "original")}` }));
  }
  const s = item.scores;
  const cell = (n, why) => el("td", { title: why || "" }, el("span", { text: n ?? "—" }),
    why ? el("span", { class: "muted", text: ` ${why}` }) : null);
  $("d-scores").replaceChildren(...(s ? [
    el("tr", {}, el("th", { scope: "row", text: "Audience fit" }), cell(s.original_audience, s.original_audience_reason),
      cell(s.rewrite_audience, s.rewrite_audience_reason)),
    el("tr", {}, el("th", { scope: "row", text: "Marketing" }), cell(s.original_marketing, s.original_marketing_reason),
      cell(s.rewrite_marketing, s.rewrite_marketing_reason)),
  ] : [el("tr", {}, el("td", { colspan: "3", class: "muted", text: "No scores." }))]));
}

function renderHistory(item) {
  const counting = item.decision ? item.decision.review_id : null;
  const standing = (d) => d.review_id === counting ? el("strong", { text: " · counts now" })
    // Decisions on an older rewrite text are kept as history but no longer count (see review/store.py).
    : d.rewrite_hash !== item.rewrite_hash ? el("span", { class: "muted", text: " · made on an earlier rewrite text" })
    : el("span", { class: "muted", text: " · replaced by a later decision" });
  $("d-history").replaceChildren(...(item.history.length ? item.history.map((d) => el("li", {},
    `${when(d.decided_at)} — ${DECISION_WORDS[d.decision] || d.decision} by ${d.reviewer} (${d.source})`,
    d.note ? ` — “${d.note}”` : "", standing(d),
    d.edited_body ? el("div", { class: "muted", text: `text: ${d.edited_title || ""} / ${d.edited_body}` }) : null,
  )).reverse() : [el("li", { class: "muted", text: "No decisions yet." })]));
}

// ---- selection and keyboard ----------------------------------------------------------------------------------------

function select(key, focusList) {
  if (state.editing) closeEdit();
  state.selected = key;
  renderList();
  renderDetail();
  const button = document.querySelector(`#list button[data-key="${CSS.escape(key)}"]`);
  if (button) {
    button.scrollIntoView({ block: "nearest" });
    if (focusList) button.focus();
  }
}

function move(step) {
  const items = visibleItems();
  if (!items.length) return;
  const at = items.findIndex((i) => keyOf(i) === state.selected);
  const next = Math.min(items.length - 1, Math.max(0, at + step));
  select(keyOf(items[next]), true);
}

function isTyping(target) {
  return !!(target && target.closest && target.closest("input, textarea, select, [contenteditable='true']"));
}

function onKey(ev) {
  if (state.editing && ev.key === "Escape") { ev.preventDefault(); closeEdit(); $("edit").focus(); return; }
  if (state.editing && ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); saveEdit(); return; }
  if (isTyping(ev.target)) {
    if (ev.key === "Escape" && ev.target === $("find")) ev.target.blur();
    return;
  }
  // While an edit is open only Ctrl+Enter and Esc act: a stray letter must not drop the text being written.
  if (state.editing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const actions = {
    j: () => move(1), ArrowDown: () => move(1), k: () => move(-1), ArrowUp: () => move(-1),
    a: () => decide("approve"), e: () => openEdit(), r: () => decide("reject"), "/": () => $("find").focus(),
  };
  const act = actions[ev.key];
  if (act) { ev.preventDefault(); act(); }
}

// ---- decisions -----------------------------------------------------------------------------------------------------

function reviewerName() {
  const name = $("reviewer").value.trim();
  if (!name) {
    say("Type your name in “Your name” first; it is kept with every decision (and remembered on this computer).");
    $("reviewer").focus();
  }
  return name;
}

async function post(item, decision, extra) {
  const reviewer = reviewerName();
  if (!reviewer || state.busy) return null;
  state.busy = true;
  say("Saving…");
  document.querySelectorAll(".buttons button").forEach((b) => { b.dataset.wasDisabled = b.disabled; b.disabled = true; });
  try {
    const res = await fetch("/api/decisions", {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ month: item.month, segment: item.segment, aggregate_id: item.aggregate_id, decision,
        reviewer, note: $("note").value.trim() || null, ...extra }),
    });
    if (res.status === 503) { showBanner(await res.text()); return null; }
    return { status: res.status, data: await res.json() };
  } catch (e) {
    showBanner(`Could not reach the review server: ${e.message}`);
    return null;
  } finally {
    state.busy = false;
    document.querySelectorAll(".buttons button").forEach((b) => { b.disabled = b.dataset.wasDisabled === "true"; });
  }
}

async function decide(decision) {
  const item = currentItem();
  if (!item) return;
  if (decision === "approve" && !item.can_approve) {
    say("This rewrite was not accepted, so it cannot be approved as it is: edit or reject it.");
    return;
  }
  const out = await post(item, decision, {});
  if (!out) return;
  if (out.status !== 200) { say(`Not saved: ${out.data.error}`); return; }
  await afterDecision(item, out.data);
}

async function afterDecision(item, data) {
  const key = keyOf(item);
  const at = visibleItems().findIndex((i) => keyOf(i) === key);
  $("note").value = "";
  closeEdit();
  await reload(true);
  // Go on with the next rewrite: the one after it, or the one now in its place when the filter dropped it.
  // Focus follows only if the reviewer is not already typing somewhere (the reload is asynchronous).
  const items = visibleItems();
  const still = items.findIndex((i) => keyOf(i) === key);
  const next = items[still >= 0 ? Math.min(still + 1, items.length - 1) : Math.min(at, items.length - 1)];
  if (next) select(keyOf(next), !isTyping(document.activeElement));
  say(`${DECISION_WORDS[data.decision.decision]} ${item.template_id || item.aggregate_id} (by ${data.decision.reviewer}).`);
}

function openEdit() {
  const item = currentItem();
  if (!item) return;
  if (state.editing) { $("edit-body").focus(); return; }
  const edited = item.decision && item.decision.decision === "edit";
  $("edit-title").value = edited ? item.decision.edited_title || "" : item.new_title || item.original_title || "";
  $("edit-body").value = edited ? item.decision.edited_body || "" : item.new_body || item.original_body || "";
  $("blocked").hidden = true;
  $("edit-form").hidden = false;
  state.editing = true;
  $("edit-body").focus();
}

function closeEdit() {
  state.editing = false;
  $("edit-form").hidden = true;
  $("blocked").hidden = true;
}

async function saveEdit() {
  const item = currentItem();
  if (!item || !state.editing) return;
  const out = await post(item, "edit", { edited_title: $("edit-title").value, edited_body: $("edit-body").value });
  if (!out) return;
  if (out.status === 422) {
    // Keep the text: the reviewer fixes what the failed checks name and saves again.
    renderChecks($("blocked-list"), out.data.checks.filter((c) => !c.passed));
    $("blocked").hidden = false;
    say("Not saved: the edit breaks a guardrail.");
    return;
  }
  if (out.status !== 200) { say(`Not saved: ${out.data.error}`); return; }
  await afterDecision(item, out.data);
}

// ---- start ---------------------------------------------------------------------------------------------------------

function wire() {
  $("reviewer").value = localStorage.getItem(REVIEWER_KEY) || "";
  $("reviewer").addEventListener("input", () => localStorage.setItem(REVIEWER_KEY, $("reviewer").value.trim()));
  $("month").addEventListener("change", () => { fillSegments($("month").value); reload(false); });
  $("segment").addEventListener("change", () => reload(false));
  $("status").addEventListener("change", () => reload(false));
  $("find").addEventListener("input", () => {
    if (!visibleItems().some((i) => keyOf(i) === state.selected)) {
      const first = visibleItems()[0];
      state.selected = first ? keyOf(first) : null;
    }
    renderList();
    renderDetail();
  });
  $("approve").addEventListener("click", () => decide("approve"));
  $("reject").addEventListener("click", () => decide("reject"));
  $("edit").addEventListener("click", openEdit);
  $("cancel-edit").addEventListener("click", () => { closeEdit(); $("edit").focus(); });
  $("edit-form").addEventListener("submit", (ev) => { ev.preventDefault(); saveEdit(); });
  $("retry").addEventListener("click", () => start());
  document.addEventListener("keydown", onKey);
}

async function start() {
  $("banner").hidden = true;
  try {
    await loadMonths();
    await loadItems(true);
    document.body.dataset.ready = "true";
  } catch (e) {
    showBanner(e.message);
  }
}

wire();
start();
