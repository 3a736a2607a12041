// edgewatch's local page: plain JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const STATUS_MS = 2000, SLOW_MS = 10000, LIVE_RETRY_MS = 10000;
const labelsSeen = new Set();

async function api(path) {
  const r = await fetch(path, {credentials: "same-origin", cache: "no-store"});
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

function text(id, value) { $(id).textContent = value; }
function num(v, digits = 1) { return typeof v === "number" ? v.toFixed(digits) : "–"; }
function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

// -- status ------------------------------------------------------------------------------------

async function refreshStatus() {
  let s;
  try { s = await api("/api/status"); } catch (e) {
    $("state").className = "badge bad"; text("state", "unreachable"); text("updated", e.message); return;
  }
  const state = $("state");
  state.textContent = s.state + (s.healthy ? "" : " (not healthy)");
  state.className = "badge " + (s.healthy ? "good" : "bad");
  const m = s.model || {};
  text("model", `${m.name || "?"} · ${m.variant || "?"}`);
  text("updated", "updated " + new Date(s.updated * 1000).toLocaleTimeString());
  text("fig-fps", num(s.fps));
  const age = s.frame_age_ms || {};
  text("fig-age", `${num(age.p50, 0)} / ${num(age.p95, 0)} ms`);
  text("fig-invoke", `${num(s.invoke_ms)} ms`);
  const f = s.frames || {}, ev = s.events || {}, src = s.source || {};
  text("fig-frames", `${f.captured ?? "–"} / ${f.inferred ?? "–"} / ${f.dropped ?? "–"}`);
  text("fig-events", `${ev.written ?? "–"} / ${ev.dropped ?? "–"} / ${ev.open ?? "–"}`);
  text("fig-camera", `${src.name || "?"}: ${src.state || "?"}${src.losses ? `, lost ${src.losses}×` : ""}`);
  showBudgets(s.budget || {});
}

function budgetRow(id, now, limit, cond) {
  const row = $(id);
  row.querySelector(".now").textContent = now;
  row.querySelector(".limit").textContent = limit;
  row.querySelector(".cond").textContent = cond;
  row.className = /breach|over|hot|limit/.test(cond) ? "warn" : "";
}

function showBudgets(b) {
  const mem = b.memory || {}, pow = b.power || {}, temp = b.temperature || {};
  const latest = window.latestFigures || {};
  const rss = mem.rss_mb ?? latest.rss_mb, watts = pow.now_w ?? latest.power_w, celsius = temp.c ?? latest.temperature_c;
  budgetRow("b-memory", rss != null ? `${num(rss)} MB` : "–", mem.budget_mb != null ? `${mem.budget_mb} MB` : "none", mem.state || "no budget");
  budgetRow("b-power", watts != null ? `${num(watts, 2)} W` : "–", pow.budget_w != null ? `${pow.budget_w} W` : "none", pow.state || "no budget");
  budgetRow("b-temperature", celsius != null ? `${num(celsius)} °C` : "–", temp.budget_c != null ? `${temp.budget_c} °C` : "none", temp.state || "no budget");
  const knobs = b.knobs;
  text("budget-state", b.state ? `${b.state}${knobs ? ` · ${knobs.variant}, ${knobs.threads} threads${knobs.rate_limit ? `, ≤ ${knobs.rate_limit} fps` : ""}` : ""}`
    : "no [budget] in the config: figures only");
}

// -- plots of the last hour ------------------------------------------------------------------------

function plot(svg, times, values, now) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = 320, H = 90, pad = 4, span = 3600;
  const pts = times.map((t, i) => [t, values[i]]).filter(([t, v]) => v != null && now - t <= span);
  if (!pts.length) {
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", 8); t.setAttribute("y", H / 2); t.setAttribute("class", "none"); t.textContent = "no figures";
    svg.appendChild(t);
    return null;
  }
  let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
  if (hi - lo < 1e-6) { lo -= 1; hi += 1; }
  const x = (t) => W - ((now - t) / span) * W;
  const y = (v) => H - pad - ((v - lo) / (hi - lo)) * (H - 2 * pad);
  // A gap in the samples (a restart, a sensor that failed) breaks the line.
  let path = "", last = null;
  for (const [t, v] of pts) {
    path += `${last === null || t - last > 60 ? "M" : "L"}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
    last = t;
  }
  const line = document.createElementNS(SVG, "path");
  line.setAttribute("d", path);
  line.setAttribute("class", "line");
  svg.appendChild(line);
  return {lo, hi, last: pts[pts.length - 1][1]};
}

async function refreshHistory() {
  let h;
  try { h = await api("/api/history"); } catch (e) { return; }
  const now = Date.now() / 1000;
  const latest = {};
  for (const key of ["fps", "power_w", "temperature_c"]) {
    const r = plot($("plot-" + key), h.t, h[key], now);
    text("cap-" + key, r ? `now ${num(r.last)} · ${num(r.lo)}–${num(r.hi)}` : "");
    const vals = h[key].filter((v) => v != null);
    latest[key] = vals.length ? vals[vals.length - 1] : null;
  }
  const rss = h.rss_mb.filter((v) => v != null);
  latest.rss_mb = rss.length ? rss[rss.length - 1] : null;
  window.latestFigures = latest;
}

async function refreshDecisions() {
  let notes;
  try { notes = await api("/api/system?kind=budget.&limit=10"); } catch (e) { return; }
  const list = $("decisions");
  list.replaceChildren();
  for (const n of notes) {
    const li = document.createElement("li");
    const t = document.createElement("time");
    t.textContent = when(n.time);
    li.append(t, " ", n.message);
    list.appendChild(li);
  }
  if (!notes.length) {
    const li = document.createElement("li");
    li.className = "muted"; li.textContent = "none";
    list.appendChild(li);
  }
}

// -- events ----------------------------------------------------------------------------------------

function eventsQuery() {
  const q = new URLSearchParams();
  const label = $("f-label").value, since = $("f-since").value.trim(), until = $("f-until").value.trim();
  if (label) q.append("label", label);
  if (since) q.append("since", since);
  if (until) q.append("until", until);
  q.append("limit", "100");
  return q.toString();
}

async function refreshEvents() {
  let rows;
  try { rows = await api("/api/events?" + eventsQuery()); } catch (e) { text("events-note", e.message); return; }
  text("events-note", `${rows.length} event${rows.length === 1 ? "" : "s"}${rows.length === 100 ? " (the latest 100)" : ""}`);
  const body = $("events").querySelector("tbody");
  body.replaceChildren();
  for (const ev of rows.reverse()) {  // newest first
    labelsSeen.add(ev.label);
    const tr = document.createElement("tr");
    tr.className = "event";
    tr.dataset.id = ev.id;
    const cell = (content) => { const td = document.createElement("td"); td.append(content); tr.appendChild(td); return td; };
    if (ev.snapshot) {
      const img = document.createElement("img");
      img.className = "thumb"; img.loading = "lazy"; img.alt = `${ev.label} ${ev.id}`;
      img.src = `/api/events/${encodeURIComponent(ev.id)}/thumbnail`;
      cell(img);
    } else cell("–");
    cell(ev.label);
    cell(ev.score.toFixed(2));
    cell(when(ev.start));
    cell(ev.end ? when(ev.end) : "in view");
    cell(ev.id);
    tr.addEventListener("click", () => openEvent(ev));
    body.appendChild(tr);
  }
  const select = $("f-label"), chosen = select.value;
  for (const label of [...labelsSeen].sort()) {
    if (![...select.options].some((o) => o.value === label)) select.add(new Option(label, label));
  }
  select.value = chosen;
}

// Box centres along the bottom edge, from the trajectory in whichever shape the log keeps it.
function trajectoryPoints(ev) {
  const traj = ev.trajectory;
  if (!Array.isArray(traj)) return [];
  return traj.map((p) => {
    const box = Array.isArray(p) ? p.slice(-4) : (p && p.box);
    return Array.isArray(box) && box.length === 4 ? [(box[0] + box[2]) / 2, box[3]] : null;
  }).filter(Boolean);
}

function openEvent(ev) {
  const img = $("viewer-img"), path = $("viewer-path");
  path.replaceChildren();
  img.onload = () => {
    const pts = trajectoryPoints(ev);
    const w = img.naturalWidth, h = img.naturalHeight;
    if (pts.length > 1 && pts.every(([x, y]) => x >= 0 && y >= 0 && x <= w && y <= h)) {
      path.setAttribute("viewBox", `0 0 ${w} ${h}`);
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", pts.map(([x, y]) => `${x},${y}`).join(" "));
      path.appendChild(line);
    }
  };
  img.src = `/api/events/${encodeURIComponent(ev.id)}/snapshot`;
  text("viewer-caption", `${ev.label} ${ev.score.toFixed(2)} · ${when(ev.start)} → ${ev.end ? when(ev.end) : "in view"} · ${ev.id}`);
  $("viewer").hidden = false;
}

// -- live view: an MJPEG stream, dropped whenever the page is hidden ------------------------------

let liveRetry = null;

function startLive() {
  if (document.hidden) return;
  clearTimeout(liveRetry);
  text("live-note", "");
  $("live").src = "/api/live.mjpg?t=" + Date.now();
}

function stopLive() {
  $("live").removeAttribute("src");  // closes the stream: the daemon stops drawing for us
}

function liveFailed() {
  if (!$("live").getAttribute("src")) return;
  stopLive();
  text("live-note", "not available now (too many viewers, or the daemon is away); trying again shortly");
  liveRetry = setTimeout(startLive, LIVE_RETRY_MS);
}

// -- wiring ---------------------------------------------------------------------------------------

function every(ms, fn) { fn(); return setInterval(() => { if (!document.hidden) fn(); }, ms); }

document.addEventListener("DOMContentLoaded", () => {
  $("live").addEventListener("error", liveFailed);
  document.addEventListener("visibilitychange", () => (document.hidden ? stopLive() : startLive()));
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); refreshEvents(); });
  $("f-label").addEventListener("change", refreshEvents);
  $("viewer-close").addEventListener("click", () => { $("viewer").hidden = true; });
  $("viewer").addEventListener("click", (e) => { if (e.target === $("viewer")) $("viewer").hidden = true; });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("viewer").hidden = true; });
  startLive();
  every(STATUS_MS, refreshStatus);
  every(SLOW_MS, refreshHistory);
  every(SLOW_MS, refreshDecisions);
  every(SLOW_MS, refreshEvents);
});
