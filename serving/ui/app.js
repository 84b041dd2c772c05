"use strict";
// LeadLens managers' dashboard: hash-routed views over the /ui/api endpoints.

const KEY = "leadlens-key";
const PERIOD = "leadlens-period";
const PER_PAGE = 25;
const FILTERS = [["rep", "reps"], ["team", "teams"], ["source", "sources"], ["grade", "grades"]];
const METRICS = ["new_leads", "calls_to_new_leads", "calls_to_previous_leads",
  "followups_to_engaged_leads", "proposals"];
const TEST_METRICS = [["roc_auc", "ROC AUC", 3], ["pr_auc", "PR AUC", 3], ["ece", "ECE", 4],
  ["brier", "Brier", 4], ["lift_top10", "lift, top 10%", 2], ["rows", "rows", 0]];

const $ = (selector) => document.querySelector(selector);
const leadsQuery = { page: 1, rep: "", team: "", source: "", grade: "", at_risk: "", sort: "" };
let repsTeam = "";
let pending = 0;
let routeSeq = 0;

// An error already shown elsewhere (the key form) or outdated by a newer route.
class Quiet extends Error {}

// ---- formatting (every value from the API goes through esc or a number formatter) ----

function esc(v) {
  if (v === null || v === undefined) return "";
  const map = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  return String(v).replace(/[&<>"']/g, (c) => map[c]);
}

const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const pct = (v) => (isNum(v) ? `${(v * 100).toFixed(1)}%` : "-");
// a calibrated probability: never "100.0%" or "0.0%" (core/probability_text.py)
const prob = (v) => (!isNum(v) ? "-" : v > 0.99 ? "&gt; 99%" : v < 0.01 ? "&lt; 1%" : `${(v * 100).toFixed(1)}%`);
const num = (v, digits = 2) => (isNum(v) ? v.toFixed(digits) : "-");
const count = (v) => (isNum(v) ? v.toLocaleString("en-US") : "-");
const money = (v) => (isNum(v) ? `$${v.toLocaleString("en-US", { maximumFractionDigits: 0 })}` : "-");
const text = (v) => (v === null || v === undefined || v === "" ? "-" : esc(v));

function fmt(v) {
  if (isNum(v)) return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(3)));
  return text(v);
}

function pts(v) {
  if (!isNum(v)) return "-";
  const rounded = Math.abs(v) < 0.05 ? 0 : v;
  return `${rounded >= 0 ? "+" : ""}${rounded.toFixed(1)} pts`;
}

function grade(g) {
  const cls = /^[A-D]$/.test(g) ? g : "x";
  return `<span class="grade grade-${cls}">${text(g)}</span>`;
}

const leadHref = (id) => `#lead/${encodeURIComponent(id)}`;
const repHref = (id, period) => `#rep/${encodeURIComponent(id)}${period ? `?period=${encodeURIComponent(period)}` : ""}`;
const leadLink = (id) => `<a class="lead-link" data-lead-id="${esc(id)}" href="${esc(leadHref(id))}">${esc(id)}</a>`;
const backLink = (href, label) => `<a class="back" href="${esc(href)}">← ${esc(label)}</a>`;
const emptyRow = (cols, message) => `<tr class="empty"><td colspan="${cols}">${esc(message)}</td></tr>`;

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  return q.toString();
}

// ---- API, key and page chrome ----

async function api(path) {
  const key = sessionStorage.getItem(KEY);
  if (!key) throw askForKey("");
  busy(1);
  try {
    let res;
    try {
      res = await fetch(path, { headers: { Authorization: `Bearer ${key}`, Accept: "application/json" } });
    } catch (err) {
      throw new Error(`Cannot reach the server (${err.message}).`);
    }
    if (res.status === 401) throw askForKey("The key was not accepted. Enter it again.");
    showApp();
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new Error(`${res.status}: ${(body && body.error) || res.statusText || "request failed"}`);
    if (body === null) throw new Error(`${path}: the answer is not JSON.`);
    return body;
  } finally {
    busy(-1);
  }
}

// The API answer, unless the user has moved on to another page meanwhile.
async function load(seq, path) {
  const data = await api(path);
  if (seq !== routeSeq) throw new Quiet("outdated");
  if (data.as_of) $("#as-of").textContent = `as of ${data.as_of}`;
  return data;
}

function busy(delta) {
  pending += delta;
  $("#loading").hidden = pending === 0;
}

function showError(message) {
  $("#error").textContent = message;
  $("#error").hidden = false;
}

function clearError() {
  $("#error").textContent = "";
  $("#error").hidden = true;
}

function askForKey(message) {
  sessionStorage.removeItem(KEY);
  $("#app").hidden = true;
  $("#tabs").hidden = true;
  $("#key-form").hidden = false;
  $("#key-message").textContent = message;
  $("#api-key").focus();
  return new Quiet(message || "no key");
}

function showApp() {
  $("#key-form").hidden = true;
  $("#app").hidden = false;
  $("#tabs").hidden = false;
}

function submitKey(event) {
  event.preventDefault();
  const key = $("#api-key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  $("#api-key").value = "";
  $("#key-message").textContent = "";
  route();
}

// ---- routing ----

const VIEWS = {
  leads: { el: "#leads-view", tab: "#tab-leads", show: showLeads },
  lead: { el: "#lead-view", tab: "#tab-leads", show: showLead },
  reps: { el: "#reps-view", tab: "#tab-reps", show: showReps },
  rep: { el: "#rep-view", tab: "#tab-reps", show: showRep },
  model: { el: "#model-view", tab: "#tab-model", show: showModel },
};

function parseHash() {
  const [path, qs = ""] = location.hash.replace(/^#/, "").split("?");
  const [name, ...rest] = path.split("/");
  let arg = rest.join("/");
  try {
    arg = decodeURIComponent(arg);
  } catch {
    // a malformed escape: keep the raw text, the API will say it is unknown
  }
  return { name: VIEWS[name] ? name : "leads", arg, params: new URLSearchParams(qs) };
}

async function route() {
  const seq = ++routeSeq;
  const { name, arg, params } = parseHash();
  clearError();
  for (const [key, view] of Object.entries(VIEWS)) {
    $(view.el).hidden = key !== name;
    $(view.tab).classList.toggle("active", view.tab === VIEWS[name].tab);
  }
  try {
    await VIEWS[name].show(seq, arg, params);
  } catch (err) {
    if (!(err instanceof Quiet) && seq === routeSeq) showError(err.message);
  }
}

// Go to a hash, re-rendering even when it is the current one.
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// A click anywhere on a table row follows the row's first link.
function followRowLink(event) {
  if (event.target.closest("a")) return;
  const link = event.target.closest("tr")?.querySelector("a[href^='#']");
  if (link) location.hash = link.getAttribute("href");
}

// ---- leads ----

async function showLeads(seq) {
  const data = await load(seq, `/ui/api/leads?${query({ ...leadsQuery, per_page: PER_PAGE })}`);
  fillFilters(data.filters || {});
  const rows = data.rows || [];
  $("#leads-table tbody").innerHTML = rows.map(leadRow).join("") || emptyRow(8, "No leads match these filters.");
  leadsQuery.page = data.page || 1;
  $("#page-info").textContent = `page ${data.page} of ${data.pages} (${data.total} leads)`;
  $("#prev-page").disabled = data.page <= 1;
  $("#next-page").disabled = data.page >= data.pages;
}

function fillFilters(filters) {
  for (const [name, key] of FILTERS) {
    const options = ["", ...(filters[key] || [])];
    $(`#filter-${name}`).innerHTML = options.map((o) =>
      `<option value="${esc(o)}"${String(o) === leadsQuery[name] ? " selected" : ""}>${o === "" ? "all" : esc(o)}</option>`
    ).join("");
  }
}

function reasonText(r) {
  return `${esc(r.text)}: ${pts(r.points)}`;
}

function leadRow(r) {
  const risk = r.risk_reason ? `<span class="risk">${esc(r.risk_reason)}</span>` : "";
  const reasons = risk + (r.reasons || []).map((x) =>
    `<span class="reason ${x.points < 0 ? "down" : "up"}">${reasonText(x)}</span>`).join("");
  return `<tr data-lead-id="${esc(r.lead_id)}">
    <td><a href="${esc(leadHref(r.lead_id))}">${esc(r.lead_id)}</a></td>
    <td class="num">${prob(r.score)}</td>
    <td>${grade(r.grade)}</td>
    <td>${text(r.owner_rep_id)}</td>
    <td>${text(r.team)}</td>
    <td>${text(r.source)}</td>
    <td class="num">${prob(r.dropout_risk)}</td>
    <td class="reasons">${reasons}</td>
  </tr>`;
}

function changeFilter(event) {
  leadsQuery[event.target.id.replace("filter-", "")] = event.target.value;
  leadsQuery.page = 1;
  route();
}

function turnPage(delta) {
  leadsQuery.page = Math.max(1, leadsQuery.page + delta);
  route();
}

// ---- one lead ----

async function showLead(seq, id) {
  const view = $("#lead-view");
  view.innerHTML = backLink("#leads", "all leads");
  if (!id) throw new Error("No lead id in the address.");
  const d = await load(seq, `/ui/api/lead?${query({ id })}`);
  view.innerHTML = `${backLink("#leads", "all leads")}
    <header class="lead-head">
      <h2>Lead ${esc(d.lead_id)} ${grade(d.grade)}</h2>
      <p class="facts">
        <span>score <strong>${prob(d.score)}</strong></span>
        <span>grade ${text(d.grade)}</span>
        <span>owner ${text(d.owner_rep_id)}</span>
        <span>team ${text(d.team)}</span>
        <span>source ${text(d.source)}</span>
        <span>created ${text(d.created_at)}</span>
        <span>dropout risk ${prob(d.dropout_risk)}</span>
        <span class="muted">model v${text(d.model_version)}</span>
      </p>
    </header>
    <h3>Why this score</h3>
    <div id="waterfall" class="chart">${d.waterfall_svg || ""}</div>
    <ol id="reasons">${(d.reasons || []).map(reasonItem).join("")}</ol>
    ${breakdown(d)}
    <h3>Score over time</h3>
    ${scoreHistory(d.history, d.history_svg)}
    <h3>Next step, as the model sees it</h3>
    <div id="actions">${actionList(d.actions || [], d.best_action)}</div>
    <h3>Timeline</h3>
    ${timeline(d.timeline || [])}`;
}

function scoreHistory(h, svg) {
  if (!h || !(h.history || []).length) {
    return '<p id="history" class="muted">No refresh has recorded this lead yet (leadlens refresh).</p>';
  }
  const m = h.last_move;
  const move = m ? `<p>Last move, ${esc(m.from.slice(0, 10))} to ${esc(m.to.slice(0, 10))}:
      <strong class="${m.change_points < 0 ? "down" : "up"}">${pts(m.change_points)}</strong>${m.model_changed ? " (a new model)" : ""}</p>
    <ul class="moved">${(m.reasons || []).slice(0, 5).map((r) => `<li>${esc(r.label)}
      <span class="pts ${r.change < 0 ? "down" : "up"}">${pts(r.change)}</span></li>`).join("")}</ul>
    <p class="muted">${(m.activities || []).length} activities in between${(m.activities || []).slice(0, 8).map((a) => `<br>${esc(a.occurred_at)} ${esc(a.type)}`).join("")}</p>` : "";
  return `<div id="history" data-trend="${esc(h.trend)}"><p>Trend: <strong>${esc(h.trend)}</strong></p>
    <div class="chart">${svg || ""}</div>${move}</div>`;
}

function reasonItem(r) {
  return `<li data-feature="${esc(r.feature)}" data-points="${esc(r.points)}">
    <span class="label">${esc(r.text)}</span>
    <span class="pts ${r.points < 0 ? "down" : "up"}">${pts(r.points)}</span></li>`;
}

function breakdown(d) {
  const rows = (d.contributions || []).map((c) => `<tr>
    <td>${esc(c.label)}</td><td><code>${esc(c.feature)}</code></td>
    <td class="num">${fmt(c.value)}</td><td class="num ${c.points < 0 ? "down" : "up"}">${pts(c.points)}</td></tr>`).join("");
  return `<details class="breakdown">
    <summary>Full breakdown: ${(d.contributions || []).length} features, starting from a base score of ${prob(d.base_score)}</summary>
    <table class="data">
      <thead><tr><th>Feature</th><th>Name</th><th class="num">Value</th><th class="num">Points</th></tr></thead>
      <tbody>${rows || emptyRow(4, "No contributions.")}</tbody>
    </table></details>`;
}

function actionList(actions, best) {
  if (!actions.length) return '<p class="muted">No actions to suggest.</p>';
  const items = actions.map((a) => {
    const isBest = best && a.action === best.action;
    return `<li${isBest ? ' class="best"' : ""}>${esc(a.label)}: ${pts(a.points)} (score ${prob(a.score_after)})</li>`;
  });
  return `<ul>${items.join("")}</ul>
    <p class="muted">Each step is added to this lead's real history and the lead is scored again:
    what the model learned from past leads, not a promise that the step causes the change.</p>`;
}

function timeline(events) {
  const rows = events.map((e) => `<tr>
    <td>${text(e.occurred_at)}</td><td>${text(e.type)}</td><td>${text(e.direction)}</td>
    <td>${text(e.outcome)}</td><td class="num">${money(e.amount)}</td><td>${text(e.rep_id)}</td></tr>`).join("");
  return `<table id="timeline" class="data">
    <thead><tr><th>Time</th><th>Type</th><th>Direction</th><th>Outcome</th><th class="num">Amount</th><th>Rep</th></tr></thead>
    <tbody>${rows || emptyRow(6, "No activities recorded.")}</tbody></table>`;
}

// ---- reps ----

// The period asked for: from the address, else the one remembered this session.
function chosenPeriod(params) {
  const period = params.get("period") || sessionStorage.getItem(PERIOD) || "";
  if (period) sessionStorage.setItem(PERIOD, period);
  return period;
}

async function showReps(seq, _arg, params) {
  const period = chosenPeriod(params);
  $("#period").value = period;
  $("#filter-team-reps").value = repsTeam;
  const body = $("#reps-body");
  body.innerHTML = "";
  const d = await load(seq, `/ui/api/reps?${query({ period, team: repsTeam })}`);
  $("#period").value = d.period || period;
  const reps = d.reps || [];
  const flagged = reps.filter((r) => r.status === "flagged").length;
  body.innerHTML = `
    <p class="muted">${esc(d.period)}: ${esc(d.period_start)} to ${esc(d.period_end)} · ${reps.length} reps, ${flagged} flagged</p>
    <blockquote id="note" class="note">${esc(d.note)}</blockquote>
    ${(d.not_judged || []).map((m) => `<blockquote class="note">${esc(m)}</blockquote>`).join("")}
    <div id="oe-chart" class="chart">${d.oe_chart_svg || ""}</div>
    <div class="scroll">
    <table id="reps-table" class="data clickable">
      <thead><tr><th>Rep</th><th>Team</th><th>Status</th>
        ${METRICS.map((m) => `<th class="num">${text((d.metric_labels || {})[m] || m)}</th>`).join("")}
        <th class="num">Conversions / expected</th><th class="num">O/E (interval)</th><th class="num">Shrunk O/E</th>
        <th class="num">Dropouts / expected</th><th class="num">Quota</th><th class="num">Flags</th></tr></thead>
      <tbody>${reps.map((r) => repRow(r, d.period)).join("") || emptyRow(14, "No reps in this period.")}</tbody>
    </table></div>`;
}

function metricCell(rep, key) {
  const m = (rep.metrics || {})[key];
  const peer = (rep.peers || {})[key] || {};
  const shown = key === "proposals" ? `${count(m?.count)} · ${money(m?.total)}` : count(m);
  return `<td class="num">${shown}<small title="team percentile ${fmt(peer.percentile)}">median ${fmt(peer.team_median)}</small></td>`;
}

function oe(rep) {
  const [low, high] = rep.oe_interval || [];
  const interval = isNum(low) || isNum(high) ? ` <small>(${num(low)}–${num(high)})</small>` : "";
  return `${num(rep.oe_ratio)}${interval}`;
}

function repRow(r, period) {
  const status = r.status || "";
  return `<tr data-rep-id="${esc(r.rep_id)}" data-status="${esc(status)}" class="${status === "flagged" ? "flagged" : ""}">
    <td><a href="${esc(repHref(r.rep_id, period))}">${esc(r.rep_id)}</a></td>
    <td>${text(r.team)}</td>
    <td><span class="status status-${esc(status)}">${text(status.replace("_", " "))}</span></td>
    ${METRICS.map((m) => metricCell(r, m)).join("")}
    <td class="num">${count(r.conversions)} / ${num(r.expected_conversions, 1)}</td>
    <td class="num">${oe(r)}</td>
    <td class="num">${num(r.oe_ratio_shrunk)}</td>
    <td class="num">${count(r.dropouts)} / ${num(r.expected_dropouts, 1)}</td>
    <td class="num">${pct(r.quota_attainment)}</td>
    <td class="num">${(r.flags || []).length}</td>
  </tr>`;
}

function submitPeriod(event) {
  event.preventDefault();
  const period = $("#period").value.trim();
  repsTeam = $("#filter-team-reps").value.trim();
  if (period) sessionStorage.setItem(PERIOD, period);
  else sessionStorage.removeItem(PERIOD);
  go(period ? `#reps?period=${encodeURIComponent(period)}` : "#reps");
}

// ---- one rep ----

async function showRep(seq, repId, params) {
  const view = $("#rep-view");
  const period = chosenPeriod(params);
  const back = backLink(period ? `#reps?period=${encodeURIComponent(period)}` : "#reps", "all reps");
  view.innerHTML = back;
  const d = await load(seq, `/ui/api/reps?${query({ period })}`);
  const rep = (d.reps || []).find((r) => r.rep_id === repId);
  if (!rep) throw new Error(`Rep ${repId} is not in the ${d.period} report.`);
  const labels = d.metric_labels || {};
  view.innerHTML = `${back}
    <h2>Rep ${esc(rep.rep_id)} <span class="status status-${esc(rep.status)}">${text(rep.status)}</span></h2>
    <p class="muted">${esc(d.period)} (${esc(d.period_start)} to ${esc(d.period_end)}) · team ${text(rep.team)}</p>
    ${repFigures(rep)}
    <h3>Activity against the team</h3>
    <table class="data">
      <thead><tr><th>Metric</th><th class="num">This rep</th><th class="num">Team median</th><th class="num">Percentile</th></tr></thead>
      <tbody>${METRICS.map((m) => repMetricRow(rep, m, labels[m] || m)).join("")}</tbody>
    </table>
    <h3>Flags</h3>
    <ul id="rep-flags">${(rep.flags || []).map(flagItem).join("")}</ul>
    ${(rep.flags || []).length ? "" : '<p class="muted">No flags this period.</p>'}
    <h3>Leads at risk</h3>
    ${atRisk(rep.leads_at_risk || [])}`;
}

function repFigures(r) {
  const depth = r.followup_depth || {};
  const figures = [
    ["leads", count(r.leads)],
    ["conversions / expected", `${count(r.conversions)} / ${num(r.expected_conversions, 1)}`],
    ["O/E (interval)", oe(r)],
    ["shrunk O/E", num(r.oe_ratio_shrunk)],
    ["dropouts / expected", `${count(r.dropouts)} / ${num(r.expected_dropouts, 1)}`],
    ["touches judged", count(r.touches_judged)],
    ["shrunk dropout ratio", num(r.dropout_ratio_shrunk)],
    ["quota attainment", pct(r.quota_attainment)],
    ["won revenue", money(r.won_revenue)],
    ["new leads first touched", count(depth.new_leads_first_touched)],
    ["median follow-ups", fmt(depth.median)],
    ["reached a fifth touch", `${pct(depth.reached_fifth_share)} <small>(shrunk ${pct(depth.reached_fifth_share_shrunk)})</small>`],
  ];
  return `<dl class="figures">${figures.map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join("")}</dl>`;
}

function repMetricRow(rep, key, label) {
  const m = (rep.metrics || {})[key];
  const peer = (rep.peers || {})[key] || {};
  const shown = key === "proposals" ? `${count(m?.count)} · ${money(m?.total)}` : count(m);
  return `<tr><td>${esc(label)}</td><td class="num">${shown}</td>
    <td class="num">${fmt(peer.team_median)}</td><td class="num">${fmt(peer.percentile)}</td></tr>`;
}

function flagItem(f) {
  const leads = (f.lead_ids || []).map(leadLink).join(", ");
  return `<li class="flag"><strong class="metric">${esc(f.metric)}</strong>
    <span class="reason">${esc(f.reason)}</span>
    ${leads ? `<div class="evidence">evidence: ${leads}</div>` : ""}</li>`;
}

function atRisk(leads) {
  const rows = leads.map((l) => `<tr><td>${leadLink(l.lead_id)}</td>
    <td class="num">${prob(l.conversion_score)}</td><td class="num">${prob(l.dropout_risk)}</td>
    <td>${esc(l.reason || "")}</td></tr>`).join("");
  return `<table id="leads-at-risk" class="data clickable">
    <thead><tr><th>Lead</th><th class="num">Conversion score</th><th class="num">Dropout risk</th><th>Why</th></tr></thead>
    <tbody>${rows || emptyRow(4, "No leads at risk.")}</tbody></table>`;
}

// ---- models ----

async function showModel(seq) {
  const view = $("#model-view");
  view.innerHTML = "";
  const d = await load(seq, "/ui/api/model");
  const cards = Object.entries(d.models || {}).filter(([, m]) => m).map(([kind, m]) => modelCard(kind, m));
  const notes = (d.notes || []).map((n) => `<li>${esc(typeof n === "string" ? n : JSON.stringify(n))}</li>`);
  view.innerHTML = `
    <h2>Models</h2>
    <p class="muted">loaded from ${text(d.origin)}${d.ready === false ? " · <strong>not ready</strong>" : ""}</p>
    ${notes.length ? `<ul id="model-notes" class="notes">${notes.join("")}</ul>` : ""}
    ${coverageBlock(d.coverage)}
    ${monitoringBlock(d.monitoring, d.monitoring_svg, d.realised_calibration_svg)}
    <div class="cards">${cards.join("") || '<p class="muted">No models are served.</p>'}</div>
    <h3>All versions</h3>
    ${versionsTable(d.versions || [])}`;
}

function monitoringBlock(m, svg, calibrationSvg) {
  if (!m) {
    return '<section id="monitoring"><h3>Monitoring</h3><p class="muted">No monitoring run yet (leadlens monitor or leadlens refresh).</p></section>';
  }
  const alarms = (m.alarms || []).map((a) => `<li class="flag"><strong>${esc(a.check)}</strong> ${esc(a.detail)}</li>`);
  const r = m.realised || {};
  const realised = r.rows ? `realised on ${esc(r.rows)} leads open at ${esc(String(r.origin).slice(0, 10))}: AUC ${fmt(r.auc)}, ECE ${fmt(r.ece)}` : esc(r.note || "");
  return `<section id="monitoring"><h3>Monitoring</h3>
    <p class="muted">latest run as of ${esc(m.as_of)} · model v${text(m.model_version)} · ${realised}</p>
    ${alarms.length ? `<ul id="alarms" class="notes">${alarms.join("")}</ul>` : '<p id="alarms">No alarm.</p>'}
    <div class="chart">${svg || ""}</div>
    ${calibrationSvg ? `<div class="chart calibration">${calibrationSvg}</div>` : ""}</section>`;
}

function coverageBlock(c) {
  if (!c) return "";
  const parts = Object.entries(c.outside_training_range || {}).map(([k, v]) =>
    `${esc(k.replaceAll("_", " "))}: ${num(100 * v, 0)}%`);
  return `<p id="coverage" class="${c.warning ? "notes" : "muted"}">Open leads outside the
    conversion model's training range (of ${count(c.open_leads)}): ${parts.join(", ") || "-"}${
    c.warning ? ` · <strong>${esc(c.warning)}</strong>` : ""}</p>`;
}

function gradeTable(g) {
  if (!g) return "";
  const rows = (g.rows || []).map((r) => `<tr data-grade="${esc(r.grade)}"><td>${grade(r.grade)}</td>
    <td class="num">${isNum(r.open_share) ? `${num(100 * r.open_share, 0)}%` : "-"}</td>
    <td class="num">${isNum(r.test_rate) ? `${num(100 * r.test_rate, 1)}%` : "-"}</td>
    <td class="num">${count(r.test_rows)}</td></tr>`).join("");
  const note = g.same_cutoffs ? "" : '<p class="notes">The grades were cut differently on the test than they are served now.</p>';
  return `<table id="grades" class="data"><caption>What each grade means</caption>
    <thead><tr><th>Grade</th><th class="num">Share of open leads</th><th class="num">Converted on the test</th><th class="num">Test leads</th></tr></thead>
    <tbody>${rows}</tbody></table>${note}`;
}

function modelCard(kind, m) {
  const tm = m.test_metrics || {};
  const metrics = TEST_METRICS.filter(([k]) => isNum(tm[k])).map(([k, label, digits]) =>
    `<tr><th>${label}</th><td class="num">${k === "rows" ? count(tm[k]) : num(tm[k], digits)}</td></tr>`).join("");
  return `<section class="model-card" data-kind="${esc(kind)}">
    <h3>${esc(kind)}</h3>
    <dl class="figures">
      <div><dt>registered name</dt><dd>${text(m.registered_name)}</dd></div>
      <div><dt>version</dt><dd>${text(m.version)}</dd></div>
      <div><dt>trained until</dt><dd>${text(m.trained_until)}</dd></div>
      <div><dt>tested from</dt><dd>${text(m.test_from)}</dd></div>
    </dl>
    <table class="metrics">${metrics || emptyRow(2, "No test metrics recorded.")}</table>
    ${gradeTable(m.grades)}
    <div class="calibration">${m.calibration_svg || '<p class="muted">Calibration not recorded.</p>'}</div>
  </section>`;
}

function versionsTable(versions) {
  const rows = versions.map((v) => `<tr${(v.aliases || []).length ? ' class="aliased"' : ""}>
    <td>${text(v.registered_name)}</td><td class="num">${text(v.version)}</td>
    <td>${text((v.aliases || []).join(", "))}</td>
    <td class="num">${num(v.test_roc_auc, 3)}</td><td class="num">${num(v.test_ece, 4)}</td>
    <td>${text(v.until)}</td><td>${text(v.promoted_at)}</td><td>${text(v.forced_reason)}</td></tr>`).join("");
  return `<table id="promotions" class="data">
    <thead><tr><th>Name</th><th class="num">Version</th><th>Aliases</th><th class="num">AUC</th><th class="num">ECE</th>
      <th>Trained until</th><th>Promoted at</th><th>Forced reason</th></tr></thead>
    <tbody>${rows || emptyRow(8, "No versions registered.")}</tbody></table>`;
}

// ---- start ----

function start() {
  $("#key-form").addEventListener("submit", submitKey);
  $("#period-form").addEventListener("submit", submitPeriod);
  for (const [name] of FILTERS) $(`#filter-${name}`).addEventListener("change", changeFilter);
  for (const name of ["at_risk", "sort"]) $(`#filter-${name}`).addEventListener("change", changeFilter);
  $("#prev-page").addEventListener("click", () => turnPage(-1));
  $("#next-page").addEventListener("click", () => turnPage(1));
  $("#leads-table tbody").addEventListener("click", followRowLink);
  $("#reps-body").addEventListener("click", followRowLink);
  $("#rep-view").addEventListener("click", followRowLink);
  window.addEventListener("hashchange", route);
  if (!location.hash) history.replaceState(null, "", "#leads");
  if (sessionStorage.getItem(KEY)) route();
  else askForKey("");
}

start();
