// dealflow console: plain JS, no build step, no third-party code.
// Talks to the bookings API of the same origin; live campaign updates come
// from GET /bookings/{id}/events (Server-Sent Events). With an API key the
// stream is read with fetch() so the key travels in the X-API-Key header,
// never in a URL. After the booking the page follows the flight
// (?follow=flight): each line's delivery against plan, its deviations, the
// deals' activations, line changes and reallocations.
"use strict";

const KEY = "dealflow.apiKey";
const STATUSES = ["requested", "shopping", "proposed", "awaiting_approval", "booking", "completed", "partial", "empty", "failed", "rejected"];
const T = "com.dealflow.";
const EVENT_TYPES = ["campaign.requested.v1", "campaign.rejected.v1", "seller.found.v1", "seller.skipped.v1", "discovery.completed.v1",
  "package.found.v1", "quote.ready.v1", "campaign.deadline.v1", "portfolio.proposed.v1", "portfolio.approved.v1", "deal.booked.v1",
  "booking.failed.v1", "campaign.completed.v1",
  "delivery.reported.v1", "pacing.deviation.v1", "deal.activated.v1", "activation.failed.v1",
  "line.changed.v1", "line.change_failed.v1", "line.paused.v1", "line.resumed.v1", "deal.cancelled.v1",
  "reallocation.proposed.v1", "reallocation.approved.v1", "reallocation.rejected.v1", "reallocation.applied.v1", "reallocation.failed.v1",
].map((t) => T + t);
const TERMINAL = new Set(["completed", "partial", "empty", "failed", "rejected"]);

const $ = (sel, root) => (root || document).querySelector(sel);
const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

// ---------- money and formatting ----------

// usd formats integer micros as dollars with two decimals (half up to the cent).
function usd(micros) {
  const cents = Math.round(Number(micros || 0) / 10000);
  return "$" + (cents / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}
function usdDollars(d) { return usd(Math.round(Number(d || 0) * 1e6)); }
// cents is what usd shows of an amount, so totals of shown amounts add up:
// a total is the sum of its lines' shown cents, not the rounded sum of
// their micros (sub-cent spends would make them differ by a cent).
function cents(micros) { return Math.round(Number(micros || 0) / 10000); }
function shownTotal(items, key) { return items.reduce((a, x) => a + cents(x[key]), 0) * 10000; }
// formatKey names a set of formats one way ("mobile/video" and
// "video/mobile" are one format mix).
function formatKey(formats) { return (formats || []).map((f) => String(f).toLowerCase()).sort().join("/") || "other"; }
function int(n) { return Number(n || 0).toLocaleString("en-US"); }
function when(s) { const d = new Date(s); return isNaN(d) ? "" : d.toLocaleString(); }

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, v);
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function fillRows(table, items, cells) {
  const tb = table.tBodies[0];
  tb.replaceChildren(...items.map((it) => {
    const r = cells(it);
    const tr = el("tr", r.attrs || {});
    for (const c of r.cells || r) {
      if (c instanceof HTMLTableCellElement) tr.append(c);
      else tr.append(el("td", {}, c));
    }
    return tr;
  }));
}
function num(v) { return el("td", { class: "num" }, v); }

// ---------- the API ----------

class AuthError extends Error {}

function apiKey() { return sessionStorage.getItem(KEY) || ""; }

function headers(extra) {
  const h = Object.assign({ Accept: "application/json" }, extra || {});
  const k = apiKey();
  if (k) h["X-API-Key"] = k;
  return h;
}

async function api(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  const ct = res.headers.get("Content-Type") || "";
  if (ct.includes("json")) data = await res.json().catch(() => null);
  if (res.status === 401) {
    showKeyForm(apiKey() ? "The server refused this key." : "");
    throw new AuthError("unauthorized");
  }
  return { status: res.status, ok: res.ok, data: data || {} };
}

function errText(r) {
  const d = r.data || {};
  return `${r.status} ${d.error || ""}${d.field ? " (" + d.field + ")" : ""}: ${d.detail || "request failed"}`;
}

// ---------- views and routing ----------

const views = ["key-view", "list-view", "new-view", "campaign-view", "deals-view"];
function show(id) {
  for (const v of views) $("#" + v).hidden = v !== id;
  document.body.dataset.view = id;
}

function showKeyForm(msg) {
  stopLive();
  show("key-view");
  $("#key-error").textContent = msg || "";
  $("#key-input").focus();
}

function updateKeyState() { $("#key-state").hidden = !apiKey(); }

function route() {
  stopLive();
  updateKeyState();
  const h = location.hash || "#/";
  const m = h.match(/^#\/c\/([A-Za-z0-9_-]{1,64})$/);
  if (m) return openCampaign(m[1]);
  if (h === "#/new") return openForm();
  if (h === "#/deals") return openDeals();
  return openList();
}

// ---------- campaigns list ----------

const list = { status: "", offset: 0, limit: 20 };

async function openList() {
  show("list-view");
  $("#list-error").textContent = "";
  const q = new URLSearchParams({ limit: list.limit, offset: list.offset });
  if (list.status) q.set("status", list.status);
  let r;
  try { r = await api("GET", "/bookings?" + q); } catch (e) { if (e instanceof AuthError) return; throw e; }
  if (!r.ok) { $("#list-error").textContent = errText(r); return; }
  const d = r.data;
  const counts = d.counts || {};
  const all = Object.values(counts).reduce((a, b) => a + b, 0);
  const chip = (status, label, n) => el("button", { type: "button", class: "chip" + (list.status === status ? " on" : ""), "data-status": status,
    onclick: () => { list.status = status; list.offset = 0; $("#status-filter").value = status; openList(); } }, `${label} ${n}`);
  $("#counts").replaceChildren(chip("", "all", all), ...STATUSES.filter((s) => counts[s]).map((s) => chip(s, s, counts[s])));
  fillRows($("#jobs"), d.jobs || [], (j) => ({
    attrs: { "data-job": j.job_id },
    cells: [el("td", {}, el("span", { class: "badge " + j.status }, j.status)),
      el("td", {}, el("a", { href: "#/c/" + j.job_id }, j.campaign_name || j.job_id)),
      num(usd(j.budget_micros)), num(usd(j.total_spend_micros)), num(j.deals), when(j.created_at)],
  }));
  $("#jobs-empty").hidden = (d.jobs || []).length > 0;
  const total = d.total || 0;
  $("#page-info").textContent = total ? `${d.offset + 1}–${Math.min(d.offset + (d.jobs || []).length, total)} of ${total}` : "";
  $("#page-prev").disabled = list.offset <= 0;
  $("#page-next").disabled = list.offset + list.limit >= total;
}

// ---------- new campaign form ----------

function isoDate(d) { return d.toISOString().slice(0, 10); }

function openForm() {
  show("new-view");
  const start = new Date(Date.now() + 14 * 864e5);
  if (!$("#f-start").value) $("#f-start").value = isoDate(start);
  if (!$("#f-end").value) $("#f-end").value = isoDate(new Date(start.getTime() + 30 * 864e5));
}

// numeric sends a number when the text is one, else the text itself so the
// API answers with its own message for the field ("must be a number").
function numeric(v) {
  v = v.trim();
  if (v === "") return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : v;
}

function briefBody(form) {
  const v = (name) => form.elements[name].value;
  const mix = {};
  for (const f of ["video", "ctv", "display"]) {
    const p = numeric(v("mix." + f));
    if (p !== undefined) mix[f] = typeof p === "number" ? p / 100 : p;
  }
  const brief = {
    name: v("brief.name"),
    budget: numeric(v("brief.budget")),
    start_date: v("brief.start_date"),
    end_date: v("brief.end_date"),
    channels: $$("input[name=channel]:checked", form).map((c) => c.value),
    kpis: { target_cpm: numeric(v("brief.kpis.target_cpm")), max_cpm: numeric(v("brief.kpis.max_cpm")) },
    per_seller_cap: numeric(v("brief.per_seller_cap")),
    min_sellers: numeric(v("brief.min_sellers")),
  };
  if (Object.keys(mix).length) brief.format_mix = mix;
  return { brief, auto_approve: form.elements.auto_approve.checked, negotiation: { strategy: v("negotiation.strategy") } };
}

function clearFieldErrors(form) {
  for (const e of $$(".field-error", form)) e.textContent = "";
  for (const i of $$("[aria-invalid]", form)) i.removeAttribute("aria-invalid");
  $("#form-error").textContent = "";
}

// showFieldError puts the API's message next to the field it names (or its
// closest named parent: brief.format_mix.video -> brief.format_mix).
function showFieldError(form, field, text) {
  let f = field;
  while (f) {
    const slot = $(`.field-error[data-field="${CSS.escape(f)}"]`, form);
    if (slot) {
      slot.textContent = text;
      const input = form.elements[f];
      if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
      return true;
    }
    f = f.includes(".") ? f.slice(0, f.lastIndexOf(".")) : "";
  }
  return false;
}

async function submitForm(ev) {
  ev.preventDefault();
  const form = ev.target;
  clearFieldErrors(form);
  const btn = $("#f-submit");
  btn.disabled = true;
  try {
    const r = await api("POST", "/bookings", briefBody(form));
    if (r.ok) { location.hash = "#/c/" + r.data.job_id; return; }
    const d = r.data;
    if (r.status === 422 && d.field && showFieldError(form, d.field, d.detail)) return;
    $("#form-error").textContent = errText(r);
  } catch (e) {
    if (!(e instanceof AuthError)) $("#form-error").textContent = String(e);
  } finally {
    btn.disabled = false;
  }
}

// ---------- one campaign, live ----------

let st = null; // the open campaign's state
let live = null; // { close() }

function newState(id) {
  return { id, status: "", name: "", budget: 0, cap: 0, autoApprove: false, sellers: new Map(), skipped: new Map(), packages: new Map(),
    quotes: new Map(), plan: null, approved: null, deals: new Map(), failures: new Map(), completed: null, rejectedReason: "",
    selected: new Set(), planKey: "", lastSeq: "",
    lines: new Map(), activations: new Map(), reallocs: new Map(), lineMsgs: new Map(), flightDone: false };
}

function stopLive() {
  if (live) { live.close(); live = null; }
  st = null;
}

async function openCampaign(id) {
  show("campaign-view");
  st = newState(id);
  const mine = st;
  $("#approval-msg").hidden = true;
  $("#c-id").textContent = id;
  $("#c-csv").setAttribute("href", `/bookings/${encodeURIComponent(id)}/deals.csv`);
  $("#c-csv").setAttribute("download", id + "-deals.csv");
  render();
  loadCaps().then(() => { if (st === mine) render(); });
  const ok = await refreshJob(mine);
  if (ok && st === mine) await loadDelivery(mine);
  if (ok && st === mine) live = connect(mine);
}

// refreshJob reads GET /bookings/{id}: the authoritative status, and the
// record's quotes, plan and deals (so a page opened late, or whose stream is
// down, still shows them). Called once on open and after decisive events.
async function refreshJob(s) {
  let r;
  try { r = await api("GET", "/bookings/" + encodeURIComponent(s.id)); } catch (e) { return false; }
  if (st !== s) return false;
  if (!r.ok) { message(errText(r), true); return false; }
  const j = r.data;
  s.status = j.status; s.name = j.campaign_name; s.budget = j.budget_micros; s.autoApprove = j.auto_approve;
  for (const k of j.skipped_sellers || []) s.skipped.set(k.seller_url + "|" + k.stage, k);
  for (const q of j.quotes || []) s.quotes.set(q.seller.url + "|" + q.package.id, q);
  if ((j.recommendations || []).length || (j.excluded || []).length) {
    setPlan(s, { lines: j.recommendations || [], excluded: j.excluded || [], total_spend_micros: j.proposed_spend_micros,
      budget_micros: j.budget_micros, revision: j.plan_revision, notes: j.plan_notes || [] });
  }
  for (const d of j.booked_lines || []) addDeal(s, d);
  // The booking ledger's view of each line: its state at the seller, its
  // budget now, the changes it allows, a change under way.
  for (const x of j.lines || []) {
    const l = flightLine(s, x.line_key);
    if (!l) continue;
    l.state = x.state || l.state;
    l.budget = x.budget_micros;
    l.actions = x.actions || [];
    l.pending = x.pending_change || "";
  }
  for (const f of [...(j.unresolved || []), ...(j.failed || [])]) s.failures.set(failureKey(f), f);
  render();
  return true;
}

function setPlan(s, plan) {
  const key = (plan.revision || 0) + ":" + plan.lines.map((l) => l.quote_id).join(",");
  if (key === s.planKey) return;
  s.plan = plan;
  s.planKey = key;
  s.selected = new Set(plan.lines.map((l) => l.quote_id));
}

let refreshTimer = 0;
function refreshSoon(s) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => refreshJob(s), 150);
}

function apply(s, type, ce) {
  const d = ce.data || {};
  switch (type) {
    case T + "campaign.requested.v1":
      s.name = s.name || d.brief?.name; s.budget = s.budget || d.brief?.budget_micros; s.cap = d.brief?.per_seller_cap_micros || 0;
      s.autoApprove = !!d.auto_approve;
      if (!s.status) s.status = "requested";
      break;
    case T + "seller.found.v1":
      s.sellers.set(d.seller.url, d);
      s.cap = s.cap || d.brief?.per_seller_cap_micros || 0;
      if (s.status === "requested") s.status = "shopping";
      break;
    case T + "seller.skipped.v1": s.skipped.set(d.seller_url + "|" + d.stage, d); break;
    case T + "package.found.v1": s.packages.set(d.seller.url + "|" + d.package.id, d); break;
    case T + "quote.ready.v1": s.quotes.set(d.seller.url + "|" + d.package.id, d); break;
    case T + "portfolio.proposed.v1": setPlan(s, d); refreshSoon(s); break;
    case T + "portfolio.approved.v1": s.approved = d; refreshSoon(s); break;
    case T + "deal.booked.v1": addDeal(s, d); refreshSoon(s); break; // the ledger's view of the new line: its controls
    case T + "booking.failed.v1": s.failures.set(failureKey(d), d); break;
    case T + "campaign.rejected.v1": s.rejectedReason = d.reason || ""; break;
    case T + "campaign.completed.v1": s.completed = d; s.status = d.status; refreshSoon(s); break;
    case T + "delivery.reported.v1": addSnapshot(s, d); break;
    case T + "pacing.deviation.v1": addDeviation(s, d); break;
    case T + "deal.activated.v1":
      s.activations.set(d.deal_key, { deal_key: d.deal_key, deal_id: d.deal_id, line_key: d.line_key, dsp: d.dsp, status: "activated",
        dsp_ref: d.dsp_ref, attempts: d.attempts, at: d.activated_at });
      break;
    case T + "activation.failed.v1": {
      const prev = s.activations.get(d.deal_key);
      if (prev && prev.status === "activated") break;
      s.activations.set(d.deal_key, { deal_key: d.deal_key, deal_id: d.deal_id, line_key: d.line_key, dsp: d.dsp,
        status: d.retryable ? "retrying" : "failed", attempts: Math.max(d.attempt || 0, prev ? prev.attempts : 0), code: d.code, reason: d.reason, at: ce.time });
      break;
    }
    case T + "line.changed.v1": {
      const l = flightLine(s, d.line_key);
      if (l) { l.state = d.state || l.state; l.budget = d.budget_after_micros; }
      refreshSoon(s);
      s.lineMsgs.set(d.line_key, { change: d.change_id, bad: false, text: `${d.action} applied at the seller${d.noop ? " (nothing to change)" : ""}: budget ${usd(d.budget_before_micros)} → ${usd(d.budget_after_micros)}; campaign committed ${usd(d.committed_micros)} of ${usd(d.budget_micros)}.` });
      break;
    }
    case T + "line.change_failed.v1":
      s.lineMsgs.set(d.line_key, { change: d.change_id, bad: true, text: `${d.action} failed (${d.code}): ${d.reason}` });
      break;
    case T + "line.paused.v1": { const l = flightLine(s, d.line_key); if (l) l.state = "paused"; refreshSoon(s); break; }
    case T + "line.resumed.v1": { const l = flightLine(s, d.line_key); if (l && l.state !== "cancelled") l.state = "live"; refreshSoon(s); break; }
    case T + "deal.cancelled.v1": { const l = flightLine(s, d.line_key); if (l) l.state = "cancelled"; refreshSoon(s); break; }
    case T + "reallocation.proposed.v1": {
      const r = s.reallocs.get(d.revision) || { status: "proposed" };
      r.p = d;
      s.reallocs.set(d.revision, r);
      break;
    }
    case T + "reallocation.approved.v1": reallocStatus(s, d.revision, "approved", `approved by ${d.approved_by}`); break;
    case T + "reallocation.rejected.v1": reallocStatus(s, d.revision, "rejected", `rejected by ${d.rejected_by}${d.reason ? ": " + d.reason : ""}`); break;
    case T + "reallocation.applied.v1": reallocStatus(s, d.revision, "applied", `applied: committed ${usd(d.committed_micros)} of ${usd(d.budget_micros)}`, d); break;
    case T + "reallocation.failed.v1": reallocStatus(s, d.revision, "failed", `failed: ${d.reason}`, d); break;
  }
}

// ---------- the flight: delivery, line changes, reallocations ----------

// flightLine is the booked line's entry (made on first sight: from its
// deal, its first snapshot or GET /bookings/{id}/delivery).
function flightLine(s, key) {
  if (!key) return null;
  let l = s.lines.get(key);
  if (!l) {
    l = { line_key: key, seller_url: "", seller_name: "", package_id: "", protocol: "", deal_ids: [], planned_spend_micros: 0, planned_impressions: 0,
      snaps: new Map(), devs: new Map(), state: "live", budget: 0, booked: false };
    s.lines.set(key, l);
  }
  return l;
}

function lineFrom(l, d) {
  l.seller_url = l.seller_url || d.seller_url || "";
  l.seller_name = l.seller_name || d.seller_name || "";
  l.package_id = l.package_id || d.package_id || "";
  l.protocol = l.protocol || d.protocol || "";
  l.flight_start = l.flight_start || d.flight_start;
  l.flight_end = l.flight_end || d.flight_end;
}

function addSnapshot(s, d) {
  const l = flightLine(s, d.line_key);
  if (!l) return;
  lineFrom(l, d);
  l.snaps.set(d.seq, d);
  const last = Math.max(...l.snaps.keys());
  if (d.seq === last) { l.planned_spend_micros = d.planned_spend_micros; l.planned_impressions = d.planned_impressions; }
}

function addDeviation(s, d) {
  const l = flightLine(s, d.line_key);
  if (!l) return;
  lineFrom(l, d);
  l.devs.set(d.direction + "|" + d.seq, d);
}

function reallocStatus(s, rev, status, note, outcome) {
  const r = s.reallocs.get(rev) || {};
  r.status = status;
  r.note = note;
  if (outcome) r.outcome = outcome;
  s.reallocs.set(rev, r);
}

// flightOver says nothing more will come (the server's follow=flight rule):
// the campaign completed, every line it booked had its final snapshot and
// no approved reallocation is still being applied.
function flightOver(s) {
  if (!s.completed) return false;
  for (const r of s.reallocs.values()) if (r.status === "approved") return false; // being applied: its outcome is to come
  for (const l of s.lines.values()) {
    if (!l.booked) continue;
    const last = l.snaps.size ? l.snaps.get(Math.max(...l.snaps.keys())) : null;
    if (!last || !last.final) return false;
  }
  return true;
}

// loadDelivery reads GET /bookings/{id}/delivery: every line's snapshots
// and deviations so far, and the activations, before the stream goes on.
async function loadDelivery(s) {
  let r;
  try { r = await api("GET", `/bookings/${encodeURIComponent(s.id)}/delivery`); } catch (e) { return; }
  if (st !== s || !r.ok) return;
  for (const x of r.data.lines || []) {
    const l = flightLine(s, x.line_key);
    lineFrom(l, x);
    l.booked = l.booked || (x.deal_ids || []).length > 0;
    for (const id of x.deal_ids || []) if (!l.deal_ids.includes(id)) l.deal_ids.push(id);
    for (const sn of x.snapshots || []) addSnapshot(s, Object.assign({ line_key: x.line_key, planned_spend_micros: x.planned_spend_micros, planned_impressions: x.planned_impressions }, sn));
    for (const dv of x.deviations || []) addDeviation(s, Object.assign({ line_key: x.line_key }, dv));
    if (!l.planned_spend_micros) { l.planned_spend_micros = x.planned_spend_micros; l.planned_impressions = x.planned_impressions; }
  }
  for (const a of r.data.activations || []) {
    const prev = s.activations.get(a.deal_key);
    if (!prev || prev.status !== "activated") s.activations.set(a.deal_key, a);
  }
  render();
}

// caps are the routes this server has (its OpenAPI document, which the
// tests hold to the code): a control whose route is missing is not shown.
let caps = null;
async function loadCaps() {
  if (caps) return caps;
  try {
    const res = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
    const doc = await res.json();
    caps = new Set();
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const m of ["get", "post", "put", "delete", "patch"]) if (item[m]) caps.add(m.toUpperCase() + " " + path);
    }
  } catch (e) {
    caps = new Set();
  }
  return caps;
}
function can(route) { return !!caps && caps.has(route); }
// missing: the answer says the route does not exist here (404 from the
// router, not from a handler; 405).
function missing(r) { return r.status === 405 || (r.status === 404 && String((r.data || {}).detail || "").startsWith("no such route")); }

const ROUTE = {
  pause: "POST /bookings/{id}/lines/{line_key}/pause",
  resume: "POST /bookings/{id}/lines/{line_key}/resume",
  cancel: "POST /bookings/{id}/lines/{line_key}/cancel",
  cancelCampaign: "POST /bookings/{id}/cancel",
  reallocApprove: "POST /bookings/{id}/reallocations/{revision}/approve",
  reallocReject: "POST /bookings/{id}/reallocations/{revision}/reject",
};

function opsMessage(text, bad) {
  const m = $("#ops-msg");
  m.hidden = false;
  m.textContent = text;
  m.className = "msg" + (bad ? " bad" : "");
}

// lineOp asks for a change of one line (h-ops's routes): 202 means the
// booker will apply it; the outcome arrives as events.
async function lineOp(s, l, action, btn) {
  btn.disabled = true;
  try {
    const r = await api("POST", `/bookings/${encodeURIComponent(s.id)}/lines/${encodeURIComponent(l.line_key)}/${action}`, {});
    if (missing(r)) { caps.delete(ROUTE[action]); opsMessage(`This server cannot ${action} lines.`, true); }
    else if (r.ok) {
      // The outcome may have arrived on the stream before this answer.
      const cur = s.lineMsgs.get(l.line_key);
      if (!cur || !r.data.change_id || cur.change !== r.data.change_id) {
        s.lineMsgs.set(l.line_key, { change: r.data.change_id, bad: false, text: `${action} requested (change ${r.data.change_id || "?"}); waiting for the seller…` });
      }
      ensureLive(s);
    }
    else s.lineMsgs.set(l.line_key, { bad: true, text: `${action}: ${errText(r)}` });
  } catch (e) {
    if (!(e instanceof AuthError)) s.lineMsgs.set(l.line_key, { bad: true, text: String(e) });
  } finally {
    btn.disabled = false;
    render();
  }
}

async function cancelCampaign() {
  const s = st;
  if (!s) return;
  const b = $("#cancel-campaign");
  if (b.dataset.confirm !== "1") {
    b.dataset.confirm = "1";
    b.textContent = "Confirm: cancel every live line";
    setTimeout(() => { b.dataset.confirm = ""; b.textContent = "Cancel campaign"; }, 6000);
    return;
  }
  b.dataset.confirm = "";
  b.textContent = "Cancel campaign";
  b.disabled = true;
  try {
    const r = await api("POST", `/bookings/${encodeURIComponent(s.id)}/cancel`, {});
    if (missing(r)) { caps.delete(ROUTE.cancelCampaign); opsMessage("This server cannot cancel campaigns.", true); }
    else if (r.ok) { opsMessage("Cancellation requested: every live line is cancelled at its seller; the lines below follow.", false); ensureLive(s); }
    else opsMessage(errText(r), true);
  } catch (e) {
    if (!(e instanceof AuthError)) opsMessage(String(e), true);
  } finally {
    b.disabled = false;
    render();
  }
}

async function decideRealloc(s, rev, verdict) {
  try {
    const r = await api("POST", `/bookings/${encodeURIComponent(s.id)}/reallocations/${rev}/${verdict}`, {});
    if (missing(r)) { caps.delete(verdict === "approve" ? ROUTE.reallocApprove : ROUTE.reallocReject); opsMessage("This server cannot decide reallocations.", true); }
    else if (r.ok) { opsMessage(`Reallocation ${rev}: ${verdict === "approve" ? "approved; applying it at the sellers" : "rejected; nothing changes"}.`, false); ensureLive(s); }
    else opsMessage(errText(r), true);
  } catch (e) {
    if (!(e instanceof AuthError)) opsMessage(String(e), true);
  }
  render();
}

// A line has one outcome at a time: an unresolved report is replaced by
// the reconciler's deal or not_booked failure for the same line.
function failureKey(f) { return f.line_key || f.seller_url + "|" + f.package_id + "|" + f.code; }
function addDeal(s, d) {
  s.deals.set(d.deal_id || d.media_buy_id, d);
  if (d.line_key) s.failures.delete(d.line_key);
  const l = flightLine(s, d.line_key);
  if (l) {
    lineFrom(l, d);
    l.booked = true;
    const id = d.deal_id || d.media_buy_id;
    if (id && !l.deal_ids.includes(id)) {
      l.deal_ids.push(id);
      if (!l.snaps.size) { l.planned_spend_micros += Number(d.spend_micros || 0); l.planned_impressions += Number(d.impressions || 0); }
    }
  }
}

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; if (st) draw(st); });
}

function setLive(text) { $("#c-live").textContent = text; }

// connect follows GET /bookings/{id}/events: with EventSource when no key
// is needed, else with fetch() and the X-API-Key header (EventSource
// cannot send headers, and the key never goes into a URL).
function connect(s) {
  // after=: a stream opened again (ensureLive) carries on where the last
  // one ended (a reconnecting EventSource sends Last-Event-ID, which wins).
  const url = `/bookings/${encodeURIComponent(s.id)}/events?follow=flight` + (s.lastSeq ? `&after=${encodeURIComponent(s.lastSeq)}` : "");
  s.liveDone = false;
  const onEvent = (type, data, id) => {
    if (st !== s) return;
    if (id) s.lastSeq = id;
    let ce;
    try { ce = JSON.parse(data); } catch { return; }
    apply(s, type || ce.type, ce);
    render();
  };
  if (!apiKey() && window.EventSource) {
    const es = new EventSource(url);
    setLive("connecting…");
    es.onopen = () => setLive("● live");
    // The server ends the stream when nothing more is to come (it has sent
    // every stored event and the flight is over): then the page's own
    // account agrees, and it does not reconnect.
    es.onerror = () => {
      if (flightOver(s)) { es.close(); s.liveDone = true; setLive("finished"); return; }
      setLive(es.readyState === EventSource.CLOSED ? "live updates stopped" : "reconnecting…");
    };
    for (const t of EVENT_TYPES) {
      es.addEventListener(t, (m) => {
        onEvent(t, m.data, m.lastEventId);
        if (s.completed) setLive("● live — following the flight");
      });
    }
    return { close: () => es.close() };
  }
  return fetchStream(s, url, onEvent);
}

function fetchStream(s, url, onEvent) {
  let ctl = null, closed = false, done = false;
  const run = async () => {
    while (!closed && !done) {
      ctl = new AbortController();
      const h = headers({ Accept: "text/event-stream" });
      if (s.lastSeq) h["Last-Event-ID"] = s.lastSeq;
      try {
        const res = await fetch(url, { headers: h, signal: ctl.signal, cache: "no-store" });
        if (res.status === 401) { showKeyForm("The server refused this key."); return; }
        if (!res.ok || !res.body) { setLive(`live updates unavailable (${res.status})`); return; }
        setLive(s.completed ? "● live — following the flight" : "● live");
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done: end } = await reader.read();
          if (end) {
            // The server ended the stream: nothing more is to come when
            // the page's own account says the flight is over.
            if (flightOver(s)) { done = true; s.liveDone = true; setLive("finished"); }
            break;
          }
          buf = (buf + value).replace(/\r\n?/g, "\n");
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const f = parseSSE(block);
            if (f.data !== "") {
              onEvent(f.event, f.data, f.id);
              if (s.completed) setLive("● live — following the flight");
            }
          }
        }
      } catch (e) {
        if (closed) return;
      }
      if (!closed && !done) { setLive("reconnecting…"); await new Promise((r) => setTimeout(r, 2000)); }
    }
  };
  run();
  return { close: () => { closed = true; if (ctl) ctl.abort(); } };
}

// parseSSE reads one event block: "field: value" lines, data lines joined
// by newlines, comments (":") ignored.
// ensureLive opens the stream again after it finished, when the buyer
// changed something whose outcome is still to come (an approved
// reallocation keeps the server's flight stream open until it ends).
function ensureLive(s) {
  if (st !== s || !s.liveDone) return;
  if (live) live.close();
  live = connect(s);
}

function parseSSE(block) {
  const f = { event: "", data: "", id: "" };
  const data = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const c = line.indexOf(":");
    const name = c < 0 ? line : line.slice(0, c);
    let val = c < 0 ? "" : line.slice(c + 1);
    if (val.startsWith(" ")) val = val.slice(1);
    if (name === "data") data.push(val);
    else if (name === "event") f.event = val;
    else if (name === "id") f.id = val;
  }
  f.data = data.join("\n");
  return f;
}

// ---------- drawing one campaign ----------

// packageLabel names a package as the seller does, with its id, when a
// PackageFound or a quote gave its name.
function packageLabel(s, seller, id) {
  const k = seller + "|" + id;
  const name = s.packages.get(k)?.package?.name || s.quotes.get(k)?.package?.name;
  return name ? `${name} (${id})` : id;
}

// explain says in a sentence what a code means for the buyer; detail
// keeps the technical text one click away.
const EXPLAIN = {
  connection_refused: "The seller refused the connection, so nothing was booked.",
  unreachable: "The seller could not be reached.",
  timeout: "The seller did not answer in time.",
  bad_response: "The seller answered with something that could not be read.",
  oversized_response: "The seller's answer was too large to read.",
  http_error: "The seller answered with an error.",
  unauthorized: "The seller refused our credentials.",
  credentials: "No credentials are configured for this seller at the tier it was priced at.",
  invalid_url: "The seller's address is not allowed.",
  blocked: "The seller is blocked in the registry and was never contacted.",
  untrusted: "The seller's trust is unknown; it is shopped only when the campaign allows unknown sellers.",
  duplicate: "The seller appeared twice; it is shopped once.",
  no_fitting_packages: "None of the seller's packages fit the brief.",
  product_unknown: "The seller names no product for the package, so it was not quoted on a guess.",
  no_prices: "The seller shows no prices at the tier it may see.",
  non_compliant: "The registry reports the seller failing compliance.",
  signing_required: "The seller requires signed requests, which dealflow does not send yet.",
  account: "The seller does not know the account in our credentials.",
  dead_lettered: "One of the seller's events could not be handled.",
  already_booked: "Someone else booked the quote first.",
  quote_expired: "The quote expired before it could be booked.",
  rejected: "The seller refused the booking.",
  budget: "Booking it would have exceeded the campaign budget.",
  budget_too_low: "The seller's minimum budget is above what the line could spend.",
  not_booked: "The seller confirmed it booked nothing; the reserved budget was released.",
  outcome_unknown: "The seller never said whether it booked the line.",
};
function explain(code) { return EXPLAIN[code] || `Failed (${String(code || "error").replaceAll("_", " ")}).`; }
function detail(code, reason) {
  return el("details", { class: "detail" }, el("summary", {}, "details"), el("code", {}, `${code}: ${reason || ""}`));
}

// sellerName finds a seller's name in whatever names it: its SellerFound,
// one of its quotes, or its skip.
function sellerName(s, url) {
  const f = s.sellers.get(url);
  if (f && f.seller.name) return f.seller.name;
  for (const q of s.quotes.values()) if (q.seller.url === url && q.seller.name) return q.seller.name;
  for (const k of s.skipped.values()) if (k.seller_url === url && k.seller_name) return k.seller_name;
  return url;
}

function draw(s) {
  $("#c-name").textContent = s.name || s.id;
  const badge = $("#c-status");
  badge.textContent = s.status || "…";
  badge.className = "badge " + s.status;
  badge.dataset.status = s.status;
  $("#c-budget").textContent = usd(s.budget);
  const deals = [...s.deals.values()];
  $("#c-spend").textContent = usd(shownTotal(deals, "spend_micros"));
  $("#c-csv").hidden = deals.length === 0; // nothing to export before a deal
  $("#c-progress").textContent = `${s.sellers.size} sellers found · ${s.skipped.size} skipped · ${s.packages.size} packages · ${s.quotes.size} quotes`;

  const fin = $("#c-final");
  if (s.completed || TERMINAL.has(s.status)) {
    const c = s.completed;
    fin.hidden = false;
    fin.textContent = `Final status: ${s.status}` + (c ? ` — ${(c.deals || []).length} deals, ${usd(shownTotal(c.deals || [], "spend_micros"))} of ${usd(c.budget_micros)}` : "") +
      (s.rejectedReason ? ` — ${s.rejectedReason}` : "");
  } else fin.hidden = true;

  const awaiting = s.status === "awaiting_approval" && s.plan && s.plan.lines.length > 0;
  $("#approval").hidden = !awaiting;
  drawPlan(s, awaiting);
  drawFlight(s);
  drawReallocs(s);

  fillRows($("#deals"), deals, (d) => ({
    attrs: { "data-deal-id": d.deal_id || d.media_buy_id, "data-protocol": d.protocol || "iab-seller-agent" },
    cells: [d.seller_name || d.seller_url, packageLabel(s, d.seller_url, d.package_id), el("td", { class: "deal-id" }, el("code", {}, d.deal_id || d.media_buy_id)), d.deal_type,
      num(usd(d.cpm_micros)), num(int(d.impressions)), num(usd(d.spend_micros)), [d.flight_start, d.flight_end].filter(Boolean).join(" → ")],
  }));
  const fails = [...s.failures.values()].map((f) => f.unresolved
    ? el("li", { class: "unresolved" }, el("strong", {}, sellerName(s, f.seller_url)),
      ` ${packageLabel(s, f.seller_url, f.package_id)}: the booking's outcome is unknown; ${usd(f.spend_micros)} stays reserved while the seller is asked what it booked. `,
      detail(f.code, f.reason))
    : el("li", {}, el("strong", {}, sellerName(s, f.seller_url)), ` ${packageLabel(s, f.seller_url, f.package_id)}: ${explain(f.code)} `, detail(f.code, f.reason)));
  $("#failures").replaceChildren(...(fails.length ? fails : [el("li", { class: "muted" }, "none")]));

  $("#negotiations").replaceChildren(...[...s.quotes.values()].sort((a, b) =>
    (a.seller.name || a.seller.url).localeCompare(b.seller.name || b.seller.url) || a.package.id.localeCompare(b.package.id)).map(negotiationCard));

  fillRows($("#sellers"), [...s.sellers.values()], (f) => [f.seller.name || f.seller.url, f.seller.trust, f.seller.source,
    el("td", {}, el("strong", {}, f.disclosure.tier), el("span", { class: "muted" }, ` (recommended ${f.disclosure.recommended}, cap ${f.disclosure.cap})`)),
    f.disclosure.reason]);
  fillRows($("#skipped"), [...s.skipped.values()], (k) => [k.seller_name || k.seller_url, k.stage, k.code,
    el("td", {}, explain(k.code) + " ", detail(k.code, k.reason))]);
  fillRows($("#packages"), [...s.packages.values()], (p) => {
    const k = p.package;
    const price = k.exact_price_micros ? usd(k.exact_price_micros) : (k.price_low_micros ? `${usd(k.price_low_micros)}–${usd(k.price_high_micros)}` : (k.price_range || ""));
    return [p.seller.name || p.seller.url, k.name ? `${k.name} (${k.id})` : k.id, (k.ad_formats || []).join(", "), num(price),
      num(k.floor_price_micros ? usd(k.floor_price_micros) : ""), k.negotiable ? "yes" : "no",
      num(k.available_impressions ? int(k.available_impressions) : el("span", { class: "muted", title: "the seller states no availability" }, "not stated"))];
  });
}

// drawFlight shows each booked line over its flight: delivered spend and
// impressions against the plan (even pacing from 0 to the line's budget),
// its pacing status, deviations with their reasons, its deals' activations,
// and the line changes this server offers.
function drawFlight(s) {
  const lines = [...s.lines.values()].filter((l) => l.booked || l.snaps.size);
  const canCancelCampaign = can(ROUTE.cancelCampaign) && lines.some((l) => l.state !== "cancelled" && !lastSnap(l)?.final);
  $("#cancel-campaign").hidden = !canCancelCampaign;
  if (!lines.length) {
    $("#flight-summary").textContent = "No line followed yet.";
    $("#flight-lines").replaceChildren();
    return;
  }
  let planned = 0, spend = 0, imps = 0;
  for (const l of lines) {
    const last = lastSnap(l);
    planned += cents(l.planned_spend_micros) * 10000;
    if (last) { spend += cents(last.spend_micros) * 10000; imps += Number(last.impressions || 0); }
  }
  const over = flightOver(s);
  $("#flight-summary").textContent = `delivered ${usd(spend)} of ${usd(planned)} planned · ${int(imps)} impressions · ` +
    (over ? "flight over" : s.completed ? "following the flight" : "booking");
  const byLine = new Map();
  for (const a of s.activations.values()) {
    const k = a.line_key || "";
    if (!byLine.has(k)) byLine.set(k, []);
    byLine.get(k).push(a);
  }
  $("#flight-lines").replaceChildren(...lines.map((l) => lineCard(s, l, byLine.get(l.line_key) || [])));
}

function lastSnap(l) { return l.snaps.size ? l.snaps.get(Math.max(...l.snaps.keys())) : null; }

function lineCard(s, l, acts) {
  const last = lastSnap(l);
  const status = last ? last.status : "scheduled";
  const final = !!(last && last.final);
  const snaps = [...l.snaps.values()].sort((a, b) => a.seq - b.seq);
  const ops = el("span", { class: "ops" });
  // A control shows when the server has its route and the ledger allows
  // the change on this line (an IAB deal cannot be paused, for one); none
  // before the ledger's view of the line has come (GET /bookings/{id}
  // lines), which a line's first events can beat.
  const op = (action, label, show, cls) => {
    if (!show || !can(ROUTE[action]) || !l.actions || !l.actions.includes(action)) return;
    const b = el("button", { type: "button", class: "op-" + action + (cls ? " " + cls : ""), "data-action": action }, label);
    b.addEventListener("click", () => {
      if (action === "cancel" && b.dataset.confirm !== "1") {
        b.dataset.confirm = "1";
        b.textContent = "Confirm cancel";
        setTimeout(() => { b.dataset.confirm = ""; b.textContent = label; }, 6000);
        return;
      }
      lineOp(s, l, action, b);
    });
    ops.append(b);
  };
  op("pause", "Pause", l.state === "live" && !final);
  op("resume", "Resume", l.state === "paused" && !final);
  op("cancel", "Cancel line", l.state !== "cancelled" && !final, "danger");
  const head = el("div", { class: "head" },
    el("span", { class: "title" }, `${l.seller_name || sellerName(s, l.seller_url)} · ${packageLabel(s, l.seller_url, l.package_id)}`),
    el("span", { class: "pace " + status, title: "pacing status of the latest snapshot" }, status.replaceAll("_", " ")),
    el("span", { class: "state " + l.state }, l.state + (l.pending ? " (change pending)" : "")),
    el("span", { class: "muted" }, (l.deal_ids || []).join(", ")), ops);
  const facts = last
    ? `spend ${usd(last.spend_micros)} of ${usd(l.planned_spend_micros)} (plan to date ${usd(last.expected_spend_micros)}) · ` +
      `${int(last.impressions)} of ${int(l.planned_impressions)} impressions · pacing index ${Number(last.pacing_index || 0).toFixed(2)} · ` +
      `${Math.round(Number(last.flight_elapsed || 0) * 100)}% of the flight · ${snaps.length} snapshot${snaps.length === 1 ? "" : "s"}${final ? " (final)" : ""}` +
      (last.error ? ` · seller not reporting: ${last.error}` : "")
    : `planned ${usd(l.planned_spend_micros)} over ${[l.flight_start, l.flight_end].filter(Boolean).join(" → ") || "the flight"}; no delivery read yet`;
  // A deviation is published with each snapshot that shows it; one
  // episode (direction, since_seq) is one item, with its latest numbers.
  const byEpisode = new Map();
  for (const d of [...l.devs.values()].sort((a, b) => a.seq - b.seq)) {
    const k = d.direction + "|" + d.since_seq;
    if (!byEpisode.has(k)) byEpisode.set(k, []);
    byEpisode.get(k).push(d);
  }
  const episodes = [...byEpisode.values()];
  const msg = s.lineMsgs.get(l.line_key);
  return el("div", { class: "line-card " + l.state, "data-line-key": l.line_key, "data-status": status, "data-state": l.state, "data-final": final ? "1" : "",
    "data-protocol": l.protocol || "iab-seller-agent" },
    head,
    el("div", { class: "muted facts" }, facts),
    el("div", { class: "charts" },
      flightChart("Spend against plan", snaps, "spend_micros", Number(l.planned_spend_micros || 0), usd, "flight-spend", "#2457d6"),
      flightChart("Impressions against plan", snaps, "impressions", Number(l.planned_impressions || 0), int, "flight-imps", "#e07b24")),
    episodes.length ? el("ul", { class: "reasons deviations" }, episodes.map((ep) => {
      const d = ep[ep.length - 1], first = ep[0];
      const pct = (v) => Math.round(Number(v || 0) * 100) + "%";
      return el("li", { "data-direction": d.direction, "data-count": ep.length },
        el("strong", {}, `${d.direction.replaceAll("_", " ")} from ${pct(first.flight_elapsed)}` + (ep.length > 1 ? ` to ${pct(d.flight_elapsed)} (${ep.length} snapshots)` : "")),
        ` pacing ${Number(d.pacing_index || 0).toFixed(2)}, tolerance ±${Number(d.tolerance || 0).toFixed(2)}: ${d.reason}`);
    })) : null,
    acts.length ? el("ul", { class: "reasons activations" }, acts.map((a) =>
      el("li", { "data-activation": a.status }, el("strong", {}, a.deal_id), a.status === "activated"
        ? ` activated in the DSP (${a.dsp}${a.dsp_ref ? ", " + a.dsp_ref : ""}) after ${a.attempts} attempt${a.attempts === 1 ? "" : "s"}`
        : ` activation ${a.status} after ${a.attempts} attempt${a.attempts === 1 ? "" : "s"} (${a.dsp}): `, a.status === "activated" ? null : detail(a.code, a.reason)))) : null,
    msg ? el("p", { class: "msg line-msg" + (msg.bad ? " bad" : "") }, msg.text) : null);
}

// flightChart draws one line's delivery to date at each snapshot (x: share
// of the flight elapsed, y: amount) against its plan, the dashed diagonal
// from nothing at the start to the whole booking at the end.
function flightChart(title, snaps, key, planned, fmt, cls, color) {
  const W = 360, H = 150, L = 70, R = 10, Tp = 10, B = 22;
  const pts = snaps.map((p) => [Number(p.flight_elapsed || 0), Number(p[key] || 0), p]);
  const hi = Math.max(planned, ...pts.map((p) => p[1]), 1) * 1.05;
  const x = (v) => L + (W - L - R) * Math.min(1, Math.max(0, v));
  const y = (v) => Tp + (H - Tp - B) * (1 - v / hi);
  const g = [svg("line", { x1: L, x2: L, y1: Tp, y2: H - B, stroke: "#dfe3ea" }), svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#dfe3ea" }),
    svg("text", { x: L - 4, y: y(0) + 3, "font-size": 9, "text-anchor": "end", fill: "#687084" }, fmt(0)),
    svg("text", { x: L - 4, y: y(planned) + 3, "font-size": 9, "text-anchor": "end", fill: "#687084" }, fmt(planned)),
    svg("text", { x: L, y: H - 6, "font-size": 9, fill: "#687084" }, "start"),
    svg("text", { x: (L + W - R) / 2, y: H - 6, "font-size": 9, "text-anchor": "middle", fill: "#687084" }, "50%"),
    svg("text", { x: W - R, y: H - 6, "font-size": 9, "text-anchor": "end", fill: "#687084" }, "end"),
    svg("line", { class: "plan", x1: x(0), y1: y(0), x2: x(1), y2: y(planned), stroke: "#687084", "stroke-dasharray": "4 3" },
      svg("title", {}, `plan: ${fmt(planned)} evenly over the flight`))];
  if (pts.length > 1) g.push(svg("polyline", { class: "delivered", points: pts.map((p) => x(p[0]) + "," + y(p[1])).join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
  for (const p of pts) {
    const bad = ["under", "over", "not_reporting"].includes(p[2].status);
    g.push(svg("circle", { cx: x(p[0]), cy: y(p[1]), r: bad ? 3.5 : 2.5, fill: bad ? "#c23a3a" : color },
      svg("title", {}, `${Math.round(p[0] * 100)}% of the flight: ${fmt(p[1])} (${String(p[2].status).replaceAll("_", " ")})`)));
  }
  return el("div", { class: "chart " + cls }, el("h4", {}, title),
    svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title }, g),
    el("div", { class: "legend" }, el("span", { class: "k-plan" }, "┄ plan"), " ● delivered (red: off plan)"));
}

// drawReallocs lists the reallocations proposed for the campaign, newest
// first, with approve and reject while one waits for a decision.
function drawReallocs(s) {
  const rs = [...s.reallocs.entries()].filter(([, r]) => r.p).sort((a, b) => b[0] - a[0]);
  $("#reallocations-card").hidden = rs.length === 0;
  const name = (k) => { const l = s.lines.get(k); return l ? `${l.seller_name || sellerName(s, l.seller_url)} ${l.package_id}` : k; };
  $("#reallocations").replaceChildren(...rs.map(([rev, r]) => {
    const p = r.p;
    const box = el("div", { class: "realloc " + r.status, "data-revision": rev, "data-status": r.status },
      el("div", { class: "title" }, `Revision ${rev} · ${r.status}`, r.note ? el("span", { class: "muted" }, ` — ${r.note}`) : null),
      el("div", {}, p.reason),
      el("div", { class: "muted" }, `committed ${usd(p.committed_before_micros)} → ${usd(p.committed_after_micros)} of ${usd(p.budget_micros)}`));
    const items = [...(p.moves || []).map((m) => el("li", {}, el("strong", {}, `${usd(m.amount_micros)}`), ` from ${name(m.from_line_key)} to ${m.to_quote ? `the remaining quote ${m.to_quote.seller_name || sellerName(s, m.to_quote.seller_url)} ${m.to_quote.package_id} (a new line)` : name(m.to_line_key)}: ${m.reason}`)),
      ...(p.pauses || []).map((x) => el("li", {}, el("strong", {}, "pause"), ` ${name(x.line_key)}: ${x.reason}`)),
      ...(p.resumes || []).map((x) => el("li", {}, el("strong", {}, "resume"), ` ${name(x.line_key)}: ${x.reason}`))];
    if (items.length) box.append(el("ul", { class: "reasons" }, items));
    if (r.status === "proposed") {
      const row = el("div", { class: "row" });
      if (can(ROUTE.reallocApprove)) row.append(el("button", { type: "button", class: "realloc-approve", onclick: () => decideRealloc(s, rev, "approve") }, "Approve"));
      if (can(ROUTE.reallocReject)) row.append(el("button", { type: "button", class: "realloc-reject danger", onclick: () => decideRealloc(s, rev, "reject") }, "Reject"));
      if (row.childNodes.length) box.append(row);
    }
    return box;
  }));
}

function drawPlan(s, awaiting) {
  const p = s.plan;
  if (!p) {
    $("#plan-summary").textContent = "No portfolio proposed yet.";
    fillRows($("#plan"), [], () => []);
    $("#plan-charts").replaceChildren();
    $("#excluded").replaceChildren();
    return;
  }
  $("#plan-summary").textContent = `Revision ${p.revision || 1}: ${p.lines.length} lines, planned ${usd(shownTotal(p.lines, "spend_micros"))} of ${usd(p.budget_micros || s.budget)}` +
    ((p.notes || []).length ? " — " + p.notes.join("; ") : "") +
    (s.approved ? ` · approved by ${s.approved.approved_by}: ${s.approved.lines.length} of ${p.lines.length} lines` : "");
  const approved = s.approved && s.approved.revision === (p.revision || s.approved.revision) ? new Set(s.approved.lines.map((l) => l.quote_id)) : null;
  fillRows($("#plan"), p.lines, (l) => {
    const on = approved ? approved.has(l.quote_id) : s.selected.has(l.quote_id);
    const box = el("input", { type: "checkbox", class: "line-check", value: l.quote_id, checked: on, disabled: !awaiting,
      "aria-label": "approve " + (l.seller_name || l.seller_url) + " " + l.package_id,
      onchange: (e) => { if (e.target.checked) s.selected.add(l.quote_id); else s.selected.delete(l.quote_id); render(); } });
    return {
      attrs: { "data-quote-id": l.quote_id, class: (awaiting || approved) && !on ? "unselected" : "", title: approved && !on ? "not approved" : undefined },
      cells: [el("td", {}, box), l.seller_name || l.seller_url, packageLabel(s, l.seller_url, l.package_id), (l.formats || []).join(", "), num(usd(l.cpm_micros)),
        num(int(l.impressions)), num(usd(l.spend_micros)), l.reason],
    };
  });
  $("#excluded").replaceChildren(...(p.excluded || []).map((x) =>
    el("li", {}, el("strong", {}, sellerName(s, x.seller_url)), x.package_id ? ` ${packageLabel(s, x.seller_url, x.package_id)}` : "", `: ${x.reason}`)));

  // The charts show what is approved (or, while choosing, what is ticked):
  // an unticked line is not spend.
  const counted = p.lines.filter((l) => (approved ? approved.has(l.quote_id) : !awaiting || s.selected.has(l.quote_id)));
  const what = approved ? "Approved" : awaiting ? "Selected" : "Planned";
  const budget = Number(p.budget_micros || s.budget || 0);
  const bySeller = new Map(), byFormat = new Map();
  for (const l of counted) {
    const name = l.seller_name || l.seller_url;
    bySeller.set(name, (bySeller.get(name) || 0) + cents(l.spend_micros) * 10000);
    const f = formatKey(l.formats);
    byFormat.set(f, (byFormat.get(f) || 0) + cents(l.spend_micros) * 10000);
  }
  const total = shownTotal(counted, "spend_micros");
  $("#plan-charts").replaceChildren(
    barChart(`${what} spend by seller, against the budget`, [["total " + what.toLowerCase(), total], ...bySeller], budget, s.cap, "plan-by-seller"),
    barChart(`${what} spend by format, against the budget`, [...byFormat], budget, 0, "plan-by-format"));
}

// barChart draws horizontal bars on a scale whose full width is the budget
// (a dashed line marks the per-seller cap when there is one).
function barChart(title, rows, budget, cap, id) {
  const W = 520, label = 130, right = 90, rowH = 22, top = 18;
  const H = top + rows.length * rowH + 18;
  const scale = (v) => (budget > 0 ? Math.min(1, v / budget) : 0) * (W - label - right);
  const g = [svg("text", { x: label, y: 12, "font-size": 10, fill: "#687084" }, "$0"),
    svg("text", { x: W - right, y: 12, "font-size": 10, fill: "#687084", "text-anchor": "end" }, "budget " + usd(budget)),
    svg("line", { x1: W - right, x2: W - right, y1: top - 4, y2: H - 14, stroke: "#1d2330", "stroke-width": 1 })];
  rows.forEach(([name, v], i) => {
    const y = top + i * rowH;
    g.push(svg("text", { x: label - 6, y: y + 14, "font-size": 11, "text-anchor": "end", fill: "#1d2330" }, String(name).slice(0, 20)));
    g.push(svg("rect", { x: label, y: y + 3, width: W - label - right, height: rowH - 8, fill: "#eef0f4" }));
    g.push(svg("rect", { x: label, y: y + 3, width: Math.max(1, scale(v)), height: rowH - 8, fill: i === 0 && String(name).startsWith("total ") ? "#1d2330" : "#2457d6" },
      svg("title", {}, `${name}: ${usd(v)}`)));
    g.push(svg("text", { x: W - right + 6, y: y + 14, "font-size": 11, fill: "#1d2330" }, usd(v)));
  });
  if (cap > 0 && budget > 0 && cap < budget) {
    const x = label + scale(cap);
    g.push(svg("line", { x1: x, x2: x, y1: top - 4, y2: H - 14, stroke: "#c23a3a", "stroke-dasharray": "4 3" }));
    g.push(svg("text", { x, y: H - 3, "font-size": 10, fill: "#c23a3a", "text-anchor": "middle" }, "per-seller cap " + usd(cap)));
  }
  return el("div", { class: "chart", id }, el("h4", {}, title),
    svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title }, g));
}

// negotiationCard shows one QuoteReady: outcome, list and final CPM, and its
// rounds as a small chart of buyer offers against seller asks.
function negotiationCard(q) {
  const rounds = q.rounds || [];
  const card = el("div", { class: "nego " + q.outcome, "data-package": q.package.id },
    el("div", { class: "title" }, `${q.seller.name || q.seller.url} · ${q.package.name || q.package.id}`),
    el("div", { class: "muted" }, `${q.strategy || "—"} · ${q.outcome} · tier ${q.tier} · ${rounds.length} rounds`),
    el("div", {}, `list ${usd(q.list_cpm_micros)} → final `, el("strong", {}, q.final_cpm_micros ? usd(q.final_cpm_micros) : "no deal")));
  if (q.reason) card.append(el("div", { class: "muted" }, q.reason));
  card.append(roundsChart(q));
  return card;
}

function roundsChart(q) {
  const rounds = q.rounds || [];
  const W = 250, H = 110, L = 46, R = 8, Tp = 8, B = 20;
  const vals = [];
  for (const r of rounds) { if (r.buyer_price_micros) vals.push(Number(r.buyer_price_micros)); if (r.seller_price_micros) vals.push(Number(r.seller_price_micros)); }
  if (q.list_cpm_micros) vals.push(Number(q.list_cpm_micros));
  if (q.final_cpm_micros) vals.push(Number(q.final_cpm_micros));
  if (!vals.length) return el("div", { class: "muted" }, "no prices");
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (hi === lo) { lo *= 0.9; hi *= 1.1; }
  const pad = (hi - lo) * 0.1; lo -= pad; hi += pad;
  const y = (v) => Tp + (H - Tp - B) * (1 - (v - lo) / (hi - lo));
  const n = Math.max(rounds.length, 1);
  const x = (i) => (n === 1 ? (L + W - R) / 2 : L + (W - L - R) * (i / (n - 1)));
  const g = [svg("line", { x1: L, x2: L, y1: Tp, y2: H - B, stroke: "#dfe3ea" }), svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#dfe3ea" }),
    svg("text", { x: L - 4, y: y(hi - pad) + 4, "font-size": 9, "text-anchor": "end", fill: "#687084" }, usd(hi - pad)),
    svg("text", { x: L - 4, y: y(lo + pad) + 4, "font-size": 9, "text-anchor": "end", fill: "#687084" }, usd(lo + pad))];
  const hline = (v, color, label) => {
    if (!v) return;
    g.push(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: color, "stroke-dasharray": "3 3" }, svg("title", {}, `${label} ${usd(v)}`)));
  };
  hline(Number(q.list_cpm_micros), "#687084", "list CPM");
  hline(Number(q.final_cpm_micros), "#1f8a4c", "final CPM");
  const series = (key, color, name) => {
    const pts = rounds.map((r, i) => [x(i), r[key] ? y(Number(r[key])) : null, r[key]]).filter((p) => p[1] !== null);
    if (!pts.length) return;
    if (pts.length > 1) g.push(svg("polyline", { points: pts.map((p) => p[0] + "," + p[1]).join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
    for (const p of pts) g.push(svg("circle", { cx: p[0], cy: p[1], r: 3, fill: color }, svg("title", {}, `${name} ${usd(p[2])}`)));
  };
  series("buyer_price_micros", "#2457d6", "buyer offer");
  series("seller_price_micros", "#e07b24", "seller ask");
  rounds.forEach((r, i) => g.push(svg("text", { x: x(i), y: H - 6, "font-size": 9, "text-anchor": "middle", fill: "#687084" }, "r" + (r.n || i + 1))));
  return el("div", { class: "chart rounds" },
    svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "negotiation rounds" }, g),
    el("div", { class: "legend" }, el("span", { class: "k-buyer" }, "● buyer offer"), " ", el("span", { class: "k-seller" }, "● seller ask"), " ",
      el("span", { class: "k-list" }, "┄ list"), " ", el("span", { class: "k-final" }, "┄ final")));
}

// ---------- approval ----------

function message(text, bad) {
  const m = $("#approval-msg");
  m.hidden = false;
  m.textContent = text;
  m.className = "msg" + (bad ? " bad" : "");
}

async function decide(path, body) {
  const s = st;
  if (!s) return;
  for (const b of $$("#approval button")) b.disabled = true;
  try {
    const r = await api("POST", `/bookings/${encodeURIComponent(s.id)}/${path}`, body);
    if (r.ok) {
      message(r.data.status === "rejected" ? "Rejected: nothing will be booked." :
        `Approved ${r.data.approved_count} lines, ${usd(r.data.total_cost_micros)} — booking.`, false);
    } else if (r.status === 409) {
      message(`${errText(r)} — someone else may have decided first; the page now shows the current status.`, true);
    } else {
      message(errText(r), true);
    }
    await refreshJob(s);
  } catch (e) {
    if (!(e instanceof AuthError)) message(String(e), true);
  } finally {
    for (const b of $$("#approval button")) b.disabled = false;
  }
}

// ---------- pushed deals ----------

function dealsMessage(text, bad) {
  const m = $("#deals-msg");
  m.hidden = !text;
  m.textContent = text || "";
  m.className = "msg" + (bad ? " bad" : "");
}

// openDeals lists GET /deals (pending by default: what sellers pushed and
// waits for the buyer), with approve and reject on each pending pushed deal.
async function openDeals() {
  show("deals-view");
  const q = new URLSearchParams({ limit: 100 });
  const status = $("#deal-filter").value;
  if (status) q.set("status", status);
  let r;
  try { r = await api("GET", "/deals?" + q); } catch (e) { if (e instanceof AuthError) return; throw e; }
  if (!r.ok) { dealsMessage(errText(r), true); fillRows($("#pushed"), [], () => []); return; }
  const deals = r.data.deals || [];
  fillRows($("#pushed"), deals, (d) => {
    const t = d.terms || {};
    const cpm = t.fixed_cpm_micros ? usd(t.fixed_cpm_micros) : t.floor_cpm_micros ? "floor " + usd(t.floor_cpm_micros) : "";
    const act = d.activation || {};
    const acts = act.activated_at ? `set up in the DSP (${act.dsp || "?"}${act.dsp_ref ? ", " + act.dsp_ref : ""})`
      : act.last_code ? `${act.final ? "failed" : "retrying"}: ${act.last_code}` : act.attempts ? `${act.attempts} attempts` : "";
    const buttons = el("td", { class: "deal-ops" });
    if (d.status === "pending" && d.origin === "pushed") {
      buttons.append(el("button", { type: "button", class: "deal-approve", onclick: (e) => decideDeal(d, "approve", e.currentTarget) }, "Approve"), " ",
        el("button", { type: "button", class: "deal-reject danger", onclick: (e) => decideDeal(d, "reject", e.currentTarget) }, "Reject"));
    }
    return {
      attrs: { "data-deal": d.deal_id, "data-status": d.status },
      cells: [el("td", {}, el("span", { class: "badge " + d.status }, d.status)), t.seller_name || d.seller_url,
        el("td", {}, el("code", {}, d.deal_id), t.name ? " " + t.name : ""), t.deal_type || "", num(cpm), num(t.impressions ? int(t.impressions) : ""),
        [t.flight_start, t.flight_end].filter(Boolean).join(" → "), d.origin, acts + (d.reason ? ` ${d.reason}` : ""), buttons],
    };
  });
  $("#pushed-empty").hidden = deals.length > 0;
}

async function decideDeal(d, verdict, btn) {
  btn.disabled = true;
  const body = { seller_url: d.seller_url };
  const reason = $("#deal-reason").value.trim();
  if (verdict === "reject" && reason) body.reason = reason;
  try {
    const r = await api("POST", `/deals/${encodeURIComponent(d.deal_id)}/${verdict}`, body);
    if (r.ok) dealsMessage(`${d.deal_id}: ${r.data.status}. ${r.data.message || ""}`, false);
    else dealsMessage(`${d.deal_id}: ${errText(r)}`, true);
  } catch (e) {
    if (!(e instanceof AuthError)) dealsMessage(String(e), true);
  }
  openDeals();
}

// ---------- CSV download ----------

// With a key, the CSV is fetched with the header and saved from a blob (a
// plain link cannot send X-API-Key); without one the link downloads directly.
async function downloadCSV(ev) {
  if (!apiKey() || !st) return;
  ev.preventDefault();
  const a = ev.currentTarget;
  const res = await fetch(a.getAttribute("href"), { headers: headers({ Accept: "text/csv" }) });
  if (res.status === 401) { showKeyForm("The server refused this key."); return; }
  if (!res.ok) { message(`CSV export failed: ${res.status}`, true); return; }
  const url = URL.createObjectURL(await res.blob());
  const tmp = el("a", { href: url, download: a.getAttribute("download") || "deals.csv" });
  document.body.append(tmp);
  tmp.click();
  tmp.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---------- wiring ----------

function init() {
  const sel = $("#status-filter");
  for (const s of STATUSES) sel.append(el("option", { value: s }, s));
  sel.addEventListener("change", () => { list.status = sel.value; list.offset = 0; openList(); });
  $("#list-refresh").addEventListener("click", () => openList());
  $("#page-prev").addEventListener("click", () => { list.offset = Math.max(0, list.offset - list.limit); openList(); });
  $("#page-next").addEventListener("click", () => { list.offset += list.limit; openList(); });
  $("#new-form").addEventListener("submit", submitForm);
  $("#key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const k = $("#key-input").value.trim();
    if (!k) return;
    sessionStorage.setItem(KEY, k);
    $("#key-input").value = "";
    route();
  });
  $("#key-forget").addEventListener("click", () => { sessionStorage.removeItem(KEY); route(); });
  $("#approve-selected").addEventListener("click", () => {
    if (!st || !st.plan) return;
    const ids = st.plan.lines.map((l) => l.quote_id).filter((q) => st.selected.has(q));
    if (!ids.length) { message("Select at least one line to approve, or reject the portfolio.", true); return; }
    decide("approve", { approved_quote_ids: ids });
  });
  $("#approve-all").addEventListener("click", () => decide("approve-all"));
  $("#reject").addEventListener("click", () => {
    const reason = $("#reject-reason").value.trim();
    decide("reject", reason ? { reason } : {});
  });
  $("#c-csv").addEventListener("click", downloadCSV);
  $("#cancel-campaign").addEventListener("click", cancelCampaign);
  $("#deal-filter").addEventListener("change", () => { dealsMessage(""); openDeals(); });
  $("#deals-refresh").addEventListener("click", () => { dealsMessage(""); openDeals(); });
  window.addEventListener("hashchange", route);
  route();
}

document.addEventListener("DOMContentLoaded", init);
