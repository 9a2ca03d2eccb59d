// tokenbroker dashboard: polls /ui/state every few seconds and renders the
// profiles, the timeline, rate limits and quotas, the audit log and webhook
// deliveries. Countdowns tick every second between polls. No dependencies.
"use strict";

const POLL_MS = 3000;
let state = null;   // the last /ui/state document
let skew = 0;       // server clock minus this one, in ms

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

const now = () => Date.now() + skew;

function span(ms) {
  if (ms == null) return "–";
  if (ms <= 0) return "expired";
  const s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  const ss = String(s % 60).padStart(2, "0"), mm = String(m).padStart(2, "0");
  if (d > 0) return `${d}d ${h}h ${mm}m`;
  if (h > 0) return `${h}h ${mm}m ${ss}s`;
  return `${m}m ${ss}s`;
}

const until = (iso) => iso ? span(Date.parse(iso) - now()) : "–";
const ago = (iso) => iso ? span(now() - Date.parse(iso)) + " ago" : "–";
const stateClass = (s) => s.replace(" ", "-");

async function load() {
  const r = await fetch("/ui/state", { credentials: "same-origin" });
  if (r.status === 401) { location.href = "/"; return; }
  if (!r.ok) { toast("could not load the state: " + r.status); return; }
  state = await r.json();
  // Follow the server's clock only when this one is clearly off, so that
  // countdowns do not jitter with network delay.
  const d = Date.parse(state.now) - Date.now();
  skew = Math.abs(d) > 2000 ? d : 0;
  render();
}

async function act(path, label) {
  const r = await fetch(path, { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": state.csrf } });
  const body = await r.json().catch(() => ({}));
  toast(r.ok ? label + ": done" : label + ": " + (body.message || r.status));
  await load();
}

function toast(msg) {
  const t = $("#toast");
  t.textContent = msg;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.textContent = ""; }, 5000);
}

function confirmRevoke(name) {
  const d = $("#confirm");
  $("#confirm-text").textContent = `Revoke the token of ${name} at the vendor and forget it here? A new login or secret may be needed.`;
  d.returnValue = "";
  d.showModal();
  d.addEventListener("close", () => { if (d.returnValue === "ok") act(`/ui/profiles/${encodeURIComponent(name)}/revoke`, "revoke " + name); }, { once: true });
}

// richText shows `quoted` parts of a message as code.
function richText(msg) {
  const f = document.createDocumentFragment();
  msg.split("`").forEach((part, i) => { if (part) f.append(i % 2 ? el("code", {}, part) : part); });
  return f;
}

const open = new Set(); // MSP profiles whose tenants are shown

const shownWhole = new Set(); // long messages opened, kept open across polls

// longText shows a long message in two lines, the whole of it on demand.
function longText(msg, key) {
  if (!msg) return "–";
  if (msg.length <= 90) return richText(msg);
  const d = el("details", { ontoggle: () => { if (d.open) shownWhole.add(key); else shownWhole.delete(key); } },
    el("summary", { title: "show the whole message" }, richText(msg)));
  d.open = shownWhole.has(key);
  return d;
}

function profileRow(p) {
  const actions = el("td", { class: "actions" }, el("div", {},
    el("button", { type: "button", "aria-label": "Refresh " + p.profile, onclick: () => act(`/ui/profiles/${encodeURIComponent(p.profile)}/refresh`, "refresh " + p.profile) }, "Refresh"),
    el("button", { type: "button", class: "quiet", "aria-label": "Revoke " + p.profile, onclick: () => confirmRevoke(p.profile) }, "Revoke"),
    ...(p.webhooks || []).map((w) => el("button", { type: "button", class: "quiet", "aria-label": `Rotate webhook ${w} token of ${p.profile}`,
      onclick: () => act(`/ui/profiles/${encodeURIComponent(p.profile)}/webhooks/${encodeURIComponent(w)}/rotate`, "rotate " + w) }, "Rotate " + w))));
  const name = el("th", { scope: "row" }, p.profile);
  if (p.tenants && p.tenants.length) {
    const isOpen = open.has(p.profile);
    name.append(el("button", { type: "button", class: "toggle", "aria-expanded": String(isOpen), "aria-label": `${isOpen ? "Hide" : "Show"} the ${p.tenants.length} tenants of ${p.profile}`,
      onclick: () => { if (open.has(p.profile)) open.delete(p.profile); else open.add(p.profile); renderProfiles(); } },
      `${isOpen ? "▾" : "▸"} ${p.tenants.length} tenants`));
  }
  const account = [p.vendor, p.region, p.tenant].filter(Boolean).join(" · ");
  return el("tr", { "data-profile": p.profile },
    name,
    el("td", {}, el("span", { class: "state " + stateClass(p.state) }, p.state)),
    el("td", { class: "countdown", "data-at": p.expires_at || "" }, until(p.expires_at)),
    el("td", { class: "countdown", "data-at": p.refresh_token_expires_at || "" }, until(p.refresh_token_expires_at)),
    el("td", { class: "wrap-short" }, account || "–"),
    el("td", {}, ago(p.last_refresh)),
    el("td", { class: "wrap" }, longText(p.last_error, p.profile)),
    el("td", { class: "wrap" }, p.next_action ? richText(p.next_action) : "–"),
    actions);
}

function tenantRow(p, t) {
  const calls = t.calls ? `${t.calls} calls, last ${ago(t.last_call)}` : "no calls yet";
  return el("tr", { class: "tenant", "data-tenant": t.id, "data-msp": p.profile },
    el("th", { scope: "row" }, t.name || t.id),
    el("td", { colspan: 8 }, el("code", {}, t.id), ` · ${calls} · the token and budget of ${p.profile}`));
}

const matches = (s, q) => (s || "").toLowerCase().includes(q);

function renderProfiles() {
  const q = $("#filter").value.trim().toLowerCase(), st = $("#state-filter").value;
  const rows = [];
  let shownProfiles = 0, shownTenants = 0;
  for (const p of state.profiles) {
    if (st && p.state !== st) continue;
    const byName = !q || matches(p.profile, q);
    const hits = q && p.tenants ? p.tenants.filter((t) => matches(t.name, q) || matches(t.id, q)) : [];
    if (!byName && !hits.length) continue;
    rows.push(profileRow(p));
    shownProfiles++;
    // Tenants show when their MSP is opened, or when the filter finds them.
    const tenants = open.has(p.profile) ? (byName ? p.tenants : hits) : (byName ? [] : hits);
    for (const t of tenants) rows.push(tenantRow(p, t));
    shownTenants += tenants.length;
  }
  $("#profiles tbody").replaceChildren(...rows);
  $("#shown").textContent = `showing ${shownProfiles} of ${state.profiles.length} profiles` + (shownTenants ? `, ${shownTenants} tenants` : "");
  const counts = {};
  for (const p of state.profiles) counts[p.state] = (counts[p.state] || 0) + 1;
  $("#summary").textContent = Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(" · ");
}

function renderTimeline() {
  const W = 1000, rowH = 26, left = 150, t0 = now() - 864e5, t1 = now() + 864e5;
  const x = (iso) => left + (Date.parse(iso) - t0) / (t1 - t0) * (W - left - 10);
  const rows = state.timeline;
  const s = svg("svg", { viewBox: `0 0 ${W} ${rowH * rows.length + 24}`, preserveAspectRatio: "xMinYMin meet" });
  const mid = x(new Date(now()).toISOString());
  s.append(svg("line", { x1: mid, x2: mid, y1: 0, y2: rowH * rows.length + 10, stroke: "#16181d", "stroke-dasharray": "3 3" }));
  const lbl = svg("text", { x: mid + 4, y: rowH * rows.length + 20, "font-size": 12, fill: "#4b5260" }); lbl.textContent = "now"; s.append(lbl);
  rows.forEach((r, i) => {
    const y = i * rowH + 4;
    const name = svg("text", { x: 4, y: y + 15, "font-size": 13, fill: "#16181d" }); name.textContent = r.profile; s.append(name);
    s.append(svg("line", { x1: left, x2: W - 10, y1: y + 10, y2: y + 10, stroke: "#e6e8ee" }));
    for (const [a, b] of r.bars) {
      const xa = Math.max(left, x(a)), xb = Math.min(W - 10, x(b));
      if (xb > xa) s.append(svg("rect", { x: xa, y: y + 4, width: xb - xa, height: 12, rx: 3, fill: "#2f6fdb", opacity: .75 }));
    }
    for (const t of r.ticks) if (x(t) >= left) s.append(svg("line", { x1: x(t), x2: x(t), y1: y + 1, y2: y + 19, stroke: "#146c2e", "stroke-width": 2 }));
    for (const t of r.failures) if (x(t) >= left) {
      const c = svg("text", { x: x(t) - 5, y: y + 16, "font-size": 15, fill: "#9b1c1c", "font-weight": 700 }); c.textContent = "✕"; s.append(c);
    }
    for (const t of r.planned) s.append(svg("circle", { cx: x(t), cy: y + 10, r: 3, fill: "#4b5260" }));
  });
  $("#timeline").replaceChildren(s);
}

function sparkline(values, limit, color) {
  const W = 240, H = 48, max = Math.max(limit || 0, ...values.filter((v) => v >= 0), 1);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  if (limit) { const y = H - limit / max * (H - 4); s.append(svg("line", { x1: 0, x2: W, y1: y, y2: y, stroke: "#9b1c1c", "stroke-dasharray": "4 3" })); }
  const pts = values.map((v, i) => v < 0 ? null : `${i / (values.length - 1) * W},${H - v / max * (H - 4)}`).filter(Boolean);
  if (pts.length) s.append(svg("polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
  return s;
}

function renderRates() {
  $("#rates").replaceChildren(...state.profiles.map((p) => {
    const last = p.rate.length ? p.rate[p.rate.length - 1] : 0;
    const used = p.quota_limit != null ? p.quota_limit - p.quota_remaining : null;
    const rate = sparkline(p.rate, p.limit_per_second, "#2f6fdb");
    rate.setAttribute("aria-label", `${p.profile} requests per second over the last hour`);
    const shared = p.tenants && p.tenants.length ? ` (shared by its ${p.tenants.length} tenants)` : "";
    const card = el("div", { class: "card" }, el("h3", {}, p.profile),
      el("p", {}, `${last.toFixed(2)} req/s` + (p.limit_per_second ? ` of ${p.limit_per_second}/s allowed` : " (no known limit)") + shared), rate,
      el("p", {}, used != null ? `daily quota: ${used} used, ${p.quota_remaining} left of ${p.quota_limit}` : "daily quota: not reported yet"));
    if (p.quota.some((v) => v >= 0)) {
      const q = sparkline(p.quota, p.quota_limit, "#146c2e");
      q.setAttribute("aria-label", `${p.profile} daily quota left over the last hour`);
      card.append(q);
    }
    return card;
  }));
}

function fillSelect(sel, values) {
  const keep = sel.value;
  sel.replaceChildren(el("option", { value: "" }, "all"), ...values.map((v) => el("option", {}, v)));
  sel.value = values.includes(keep) ? keep : "";
}

function renderAudit() {
  fillSelect($("#audit-profile"), state.profiles.map((p) => p.profile));
  const prof = $("#audit-profile").value, out = $("#audit-outcome").value;
  const rows = state.audit.filter((e) => (!prof || e.profile === prof) && (!out || e.outcome === out)).slice(0, 100);
  $("#audit tbody").replaceChildren(...rows.map((e) => el("tr", {},
    el("td", {}, new Date(e.time).toLocaleString()), el("td", {}, e.profile), el("td", {}, e.action), el("td", {}, e.grant || "–"),
    el("td", {}, e.outcome), el("td", { class: "wrap" }, e.error || "–"))));
}

function renderHooks() {
  const out = $("#hooks-outcome").value;
  const rows = state.deliveries.filter((d) => !out || d.outcome === out).slice(0, 100);
  $("#hooks tbody").replaceChildren(...rows.map((d) => el("tr", {},
    el("td", {}, new Date(d.time).toLocaleString()), el("td", {}, d.profile), el("td", {}, d.outcome),
    el("td", {}, d.reason || (d.count ? d.count + " forwarded" : "–")))));
}

function render() {
  renderProfiles(); renderTimeline(); renderRates(); renderAudit(); renderHooks();
}

// Countdowns tick between polls.
setInterval(() => {
  for (const td of document.querySelectorAll("td.countdown")) td.textContent = until(td.dataset.at || null);
}, 1000);

for (const id of ["#audit-profile", "#audit-outcome"]) $(id).addEventListener("change", renderAudit);
$("#filter").addEventListener("input", () => state && renderProfiles());
$("#state-filter").addEventListener("change", () => state && renderProfiles());
$("#hooks-outcome").addEventListener("change", renderHooks);
$("#logout").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await fetch("/ui/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": state ? state.csrf : "" } });
  location.href = "/";
});

load();
setInterval(load, POLL_MS);
