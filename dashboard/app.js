/*
 * tocsin dashboard (docs/dashboard.md): plain JS, no build step.
 *
 * Everything shown comes from the collector's API (docs/api.md) and
 * much of it from hostile places (log lines, agent names, notes): it is
 * only ever inserted with textContent / createTextNode (el() below),
 * never as HTML. The page is served under a CSP without inline script.
 */
"use strict";

const REFRESH_MS = 5000;
/* Rows a view reads per refresh: one page each, never the whole table
 * (bench/README.md "API": reading every open incident to count them
 * cost ingest 10-31%). "More" asks for the next page by its cursor. */
const PAGE = 100;
const PRIO_NAMES = ["", "P1", "P2", "P3", "P4", "P5"];
let token = sessionStorage.getItem("tocsin-token") || "";
let role = "viewer"; /* "operator" once the probe says so */
let timer = null;
let chart = null;
let busy = false;
/* GET /api/v1/summary of the last refresh (the header's counts). */
let summary = null;
/* Pages the user asked for with "More", per list; reset on a new view. */
let pages = {};
let shownView = "";

/* An element with attributes and children; strings become text nodes. */
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, String(v));
  }
  for (const c of kids.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
  return e;
}

/* A header cell; numeric columns ("Count", ...) align right. */
function th(h) {
  return el("th", { class: /^(Count|Score|Rank|Spool depth|Spool bytes)$/.test(h) ? "num" : null }, h);
}

function setText(id, s) {
  document.getElementById(id).textContent = s;
}

class HttpError extends Error {
  constructor(status, msg) {
    super(msg);
    this.status = status;
  }
}

async function api(path, opts) {
  const o = Object.assign({ headers: {} }, opts || {});
  if (token) o.headers["Authorization"] = "Bearer " + token;
  const r = await fetch(path, o);
  let doc = null;
  try {
    doc = await r.json();
  } catch (e) {
    doc = null;
  }
  if (!r.ok) {
    if (r.status === 401) showLogin(token ? "token refused (revoked?)" : "");
    throw new HttpError(r.status, (doc && doc.error) || r.statusText);
  }
  return doc;
}

/*
 * One list of a view: its first page, plus as many more as the user
 * asked for with "More" (pages[name]), each by the cursor the one
 * before gave. Returns {rows, more}: more is whether the API has rows
 * past the last one read.
 */
async function page(name, path, key) {
  const want = 1 + (pages[name] || 0);
  const sep = path.includes("?") ? "&" : "?";
  let rows = [];
  let cur = null;
  for (let n = 0; n < want; n++) {
    const doc = await api(path + sep + "limit=" + PAGE + (cur ? "&cursor=" + encodeURIComponent(cur) : ""));
    rows = rows.concat(doc[key]);
    cur = doc.next_cursor;
    if (!cur) break;
  }
  return { rows, more: !!cur };
}

function appendMore(main, b) {
  if (b) main.appendChild(b);
}

/* The "More" button under a list: one more page at the next refresh,
 * which follows at once. */
function moreButton(name, res, total) {
  if (!res.more) return null;
  return el("p", { class: "more" }, "Showing " + res.rows.length + (total !== undefined ? " of " + total : "") + " ",
    el("button", { "data-more": name, on: { click: () => { pages[name] = (pages[name] || 0) + 1; refresh(); } } }, "More"));
}

function ago(ns) {
  if (!ns) return "–";
  const s = Math.max(0, Math.round(Date.now() / 1000 - ns / 1e9));
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.floor(s / 60) + "m ago";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m ago";
  return Math.floor(s / 86400) + "d ago";
}

function iso(ns) {
  return ns ? new Date(ns / 1e6).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "–";
}

function prio(p) {
  return el("span", { class: "prio p" + p }, PRIO_NAMES[p] || "P?");
}

function title(inc) {
  return inc.fingerprint && inc.fingerprint !== inc.rule ? inc.rule + ": " + inc.fingerprint : inc.rule;
}

function flash(msg, bad) {
  const f = document.getElementById("flash");
  f.textContent = msg;
  f.className = bad ? "flash bad" : "flash";
  f.hidden = false;
  setTimeout(() => { f.hidden = true; }, 6000);
}

/* An operator action: 202 means recorded; the engine applies it at its
 * next step, which the refresh that follows shows. */
async function act(kind, id, verb, body) {
  try {
    const doc = await api("/api/v1/" + kind + "/" + id + "/" + verb, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });
    flash(verb + " recorded (action " + doc.action + ")");
    setTimeout(refresh, 600);
  } catch (e) {
    flash(verb + " refused: " + e.message, true);
  }
}

function actions(kind, id, state) {
  if (role !== "operator") return null;
  const d = el("span", { class: "actions" });
  if (kind === "incidents" && state === "open")
    d.appendChild(el("button", { class: "ack", "data-act": "ack", on: { click: () => act(kind, id, "ack") } }, "Ack"));
  if (kind === "incidents" && (state === "open" || state === "acknowledged"))
    d.appendChild(el("button", { "data-act": "resolve", on: { click: () => act(kind, id, "resolve") } }, "Resolve"));
  if (kind === "problems" && state === "open")
    d.appendChild(el("button", { "data-act": "investigate", on: { click: () => act(kind, id, "investigate") } }, "Investigate"));
  d.appendChild(el("button", {
    "data-act": "note",
    on: {
      click: () => {
        const t = prompt("Note for " + kind.slice(0, -1) + " " + id);
        if (t) act(kind, id, "note", { text: t });
      },
    },
  }, "Note"));
  return d;
}

/* --- views ---------------------------------------------------------- */

/* A table of incidents, in the order given (the API's: by priority,
 * then newest). */
function incidentTable(id, rows) {
  const tb = el("tbody");
  for (const i of rows) {
    tb.appendChild(el("tr", { class: "row p" + i.priority + (i.state === "acknowledged" ? " acked" : ""), "data-id": i.id },
      el("td", {}, prio(i.priority)),
      el("td", {}, el("a", { href: "#incident/" + i.id }, "#" + i.id)),
      el("td", { class: "title" }, title(i)),
      el("td", {}, i.host),
      el("td", {}, el("span", { class: "state " + i.state }, i.state), i.silenced ? el("span", { class: "tag" }, "silenced") : null,
        i.flapping ? el("span", { class: "tag" }, "flapping") : null),
      el("td", { class: "num" }, i.count),
      el("td", {}, ago(i.opened_at)),
      el("td", {}, i.problem ? el("a", { href: "#problem/" + i.problem }, "problem #" + i.problem) : "–",
        i.inhibited ? el("span", { class: "tag" }, "symptom") : null),
      el("td", {}, actions("incidents", i.id, i.state))));
  }
  return el("table", { id: id },
    el("thead", {}, el("tr", {}, ["Prio", "Id", "What", "Host", "State", "Count", "Opened", "Problem", ""].map(th))),
    tb);
}

/*
 * Open incidents by priority (P1 first, then newest), then the
 * acknowledged ones: a page of each, in that order from the API
 * (order=priority, on the store's index), the totals from the summary.
 */
async function viewIncidents(main) {
  const [open, acked] = await Promise.all([
    page("open", "/api/v1/incidents?state=open&order=priority", "incidents"),
    page("acked", "/api/v1/incidents?state=acknowledged&order=priority", "incidents"),
  ]);
  const tot = (k) => (summary ? summary.incidents[k].total : undefined);
  main.appendChild(el("h2", {}, "Open incidents (" + (tot("open") ?? open.rows.length) + ")"));
  if (!open.rows.length) main.appendChild(el("p", { class: "calm" }, "Nothing open."));
  else main.appendChild(incidentTable("incidents", open.rows));
  appendMore(main, moreButton("open", open, tot("open")));
  if (!acked.rows.length) return;
  main.appendChild(el("h2", {}, "Acknowledged (" + (tot("acknowledged") ?? acked.rows.length) + ")"));
  main.appendChild(incidentTable("acknowledged", acked.rows));
  appendMore(main, moreButton("acked", acked, tot("acknowledged")));
}

function timeline(entries) {
  return el("table", { class: "timeline" },
    el("thead", {}, el("tr", {}, el("th", {}, "When"), el("th", {}, "What"), el("th", {}, "Who"), el("th", {}, "Detail"))),
    el("tbody", {}, (entries || []).map((t) => el("tr", {},
      el("td", { class: "ts" }, iso(t.ts)), el("td", {}, t.what), el("td", {}, t.who), el("td", { class: "detail" }, t.detail)))));
}

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

async function viewIncident(main, id) {
  const i = await api("/api/v1/incidents/" + id);
  main.appendChild(el("h2", {}, prio(i.priority), " Incident #" + i.id + " ", el("span", { class: "title" }, title(i))));
  main.appendChild(el("div", { class: "bar" }, el("span", { class: "state big " + i.state }, i.state), actions("incidents", i.id, i.state)));
  main.appendChild(facts([
    ["host", i.host], ["rule", i.rule], ["severity", i.severity], ["kind", i.kind],
    ["fingerprint", i.fingerprint], ["count", i.count], ["opened", iso(i.opened_at) + " (" + ago(i.opened_at) + ")"],
    ["last seen", iso(i.last_seen)], ["acknowledged", iso(i.acked_at)], ["resolved", iso(i.resolved_at)],
    ["problem", i.problem ? el("a", { href: "#problem/" + i.problem }, "#" + i.problem) : "–"],
  ]));
  main.appendChild(el("h3", {}, "Timeline"));
  main.appendChild(timeline(i.timeline));
}

async function viewProblems(main) {
  const res = await page("problems", "/api/v1/problems", "problems");
  const rows = res.rows;
  main.appendChild(el("h2", {}, "Problems (" + (summary ? "open " + summary.problems.open + ", investigating " +
    summary.problems.investigating + ", known error " + summary.problems.known_error : rows.length) + ")"));
  const tb = el("tbody");
  for (const p of rows) {
    tb.appendChild(el("tr", { class: "row" },
      el("td", {}, el("a", { href: "#problem/" + p.id }, "#" + p.id)),
      el("td", { class: "title" }, p.title),
      el("td", {}, el("span", { class: "state " + p.state }, p.state)),
      el("td", {}, p.root_cause || "–"),
      el("td", {}, (p.incidents || []).map((n) => el("a", { href: "#incident/" + n, class: "chip" }, "#" + n))),
      el("td", {}, (p.hosts || []).join(", ")),
      el("td", {}, ago(p.opened_at)),
      el("td", {}, actions("problems", p.id, p.state))));
  }
  main.appendChild(el("table", { id: "problems" },
    el("thead", {}, el("tr", {}, ["Id", "Title", "State", "Root cause", "Incidents", "Hosts", "Opened", ""].map(th))),
    tb));
  appendMore(main, moreButton("problems", res));
}

async function viewProblem(main, id) {
  const p = await api("/api/v1/problems/" + id);
  main.appendChild(el("h2", {}, "Problem #" + p.id + " ", el("span", { class: "title" }, p.title)));
  main.appendChild(el("div", { class: "bar" }, el("span", { class: "state big " + p.state }, p.state), actions("problems", p.id, p.state)));
  main.appendChild(facts([
    ["rule", p.rule], ["key", p.key], ["root cause", p.root_cause || "–"],
    ["incidents", (p.incidents || []).map((n) => el("a", { href: "#incident/" + n, class: "chip" }, "#" + n))],
    ["hosts", (p.hosts || []).join(", ")], ["opened", iso(p.opened_at)],
  ]));
  main.appendChild(el("h3", {}, "Root-cause candidates"));
  main.appendChild(el("table", { class: "candidates" },
    el("thead", {}, el("tr", {}, ["Rank", "Host", "Incident", "Score", "Evidence"].map(th))),
    el("tbody", {}, (p.candidates || []).map((c) => el("tr", { class: c.rank === 1 ? "best" : "" },
      el("td", { class: "num" }, c.rank), el("td", {}, c.host),
      el("td", {}, c.incident ? el("a", { href: "#incident/" + c.incident }, "#" + c.incident) : "–"),
      el("td", { class: "num" }, c.score), el("td", { class: "detail" }, c.evidence))))));
  if (p.links && p.links.length) {
    main.appendChild(el("h3", {}, "Links"));
    main.appendChild(el("ul", {}, p.links.map((l) => el("li", {}, iso(l.ts) + " " + l.what + " #" + l.incident + " (" + l.rule + " " + l.fields + ")"))));
  }
  main.appendChild(el("h3", {}, "Timeline"));
  main.appendChild(timeline(p.timeline));
}

async function viewAgents(main) {
  const doc = await api("/api/v1/agents");
  main.appendChild(el("h2", {}, "Agents (" + doc.agents.length + ")"));
  main.appendChild(el("table", { id: "agents" },
    el("thead", {}, el("tr", {}, ["Agent", "State", "Last seen", "Spool depth", "Spool bytes", "Version", "Address"].map(th))),
    el("tbody", {}, doc.agents.map((a) => el("tr", { class: a.silent ? "row silent" : "row" },
      el("td", {}, a.name),
      el("td", {}, el("span", { class: "state " + (a.connected ? "up" : "down") }, a.connected ? "connected" : "disconnected"),
        a.silent ? el("span", { class: "tag" }, "silent") : null),
      el("td", {}, ago(a.last_seen)), el("td", { class: "num" }, a.spool_depth),
      el("td", { class: "num" }, a.spool_bytes), el("td", {}, a.software), el("td", {}, a.address))))));
}

/* MTTA and MTTR per day (per hour within two days), from the newest
 * incidents (a page of PAGE, "More" for older ones): there is no
 * aggregate endpoint per time bucket (docs/dashboard.md). */
async function viewCharts(main) {
  const res = await page("charts", "/api/v1/incidents", "incidents");
  const rows = res.rows;
  main.appendChild(el("h2", {}, "MTTA / MTTR (the newest " + rows.length + " incidents, computed in the page)"));
  const span = rows.length ? (rows[0].opened_at - rows[rows.length - 1].opened_at) / 1e9 : 0;
  const bucket = span > 2 * 86400 ? 86400 : 3600;
  const b = new Map();
  for (const i of rows) {
    const k = Math.floor(i.opened_at / 1e9 / bucket) * bucket;
    const e = b.get(k) || { ack: [], res: [] };
    if (i.acked_at) e.ack.push((i.acked_at - i.opened_at) / 6e10);
    if (i.resolved_at) e.res.push((i.resolved_at - i.opened_at) / 6e10);
    b.set(k, e);
  }
  const keys = [...b.keys()].sort((x, y) => x - y);
  const mean = (a) => (a.length ? a.reduce((s, v) => s + v, 0) / a.length : null);
  const labels = keys.map((k) => new Date(k * 1000).toISOString().slice(0, bucket === 86400 ? 10 : 16).replace("T", " "));
  const canvas = el("canvas", { id: "mttchart" });
  main.appendChild(el("div", { class: "chartbox" }, canvas));
  const tb = el("tbody", {}, keys.map((k, n) => el("tr", {}, el("td", {}, labels[n]), el("td", { class: "num" }, b.get(k).ack.length ? mean(b.get(k).ack).toFixed(1) : "–"),
    el("td", { class: "num" }, b.get(k).res.length ? mean(b.get(k).res).toFixed(1) : "–"))));
  main.appendChild(el("table", { class: "small" }, el("thead", {}, el("tr", {}, el("th", {}, "Opened"), el("th", {}, "MTTA (min)"), el("th", {}, "MTTR (min)"))), tb));
  appendMore(main, moreButton("charts", res));
  if (typeof Chart === "undefined") {
    canvas.replaceWith(el("p", { class: "error" }, "Chart.js is not installed on the collector (libjs-chart.js): figures below."));
    return;
  }
  if (chart) chart.destroy();
  Chart.defaults.color = "#c8ced8";
  Chart.defaults.borderColor = "#2a323e";
  Chart.defaults.font.size = 13;
  chart = new Chart(canvas, {
    type: "bar",
    data: {
      labels,
      datasets: [
        { label: "MTTA (minutes)", data: keys.map((k) => mean(b.get(k).ack)), borderColor: "#e0a100", backgroundColor: "#e0a100", spanGaps: true },
        { label: "MTTR (minutes)", data: keys.map((k) => mean(b.get(k).res)), borderColor: "#3b82f6", backgroundColor: "#3b82f6", spanGaps: true },
      ],
    },
    options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } },
  });
}

async function viewHints(main) {
  main.appendChild(el("h2", {}, "Hints and their delivery"));
  /* The newest first, a page of them ("More" for older ones). */
  const res = await page("hints", "/api/v1/hints?order=newest", "hints");
  const rows = res.rows;
  if (rows.length === 0) {
    main.appendChild(el("p", { class: "placeholder" }, "No hints decided yet: a hint goes to a host when a runbook or a known error matches its incident or problem."));
    return;
  }
  const where = (h) => h.problem && !h.incident ? el("a", { href: "#problem/" + h.problem }, "problem #" + h.problem)
    : h.incident ? el("a", { href: "#incident/" + h.incident }, "#" + h.incident) : "–";
  main.appendChild(el("table", { id: "hints" },
    el("thead", {}, el("tr", {}, ["Id", "About", "Agent", "Title", "Source", "Action", "State", "Sent", "Acked", "Error"].map(th))),
    el("tbody", {}, rows.map((h) => el("tr", {}, el("td", {}, h.id), el("td", {}, where(h)),
      el("td", {}, h.agent), el("td", {}, h.title), el("td", {}, h.source), el("td", {}, h.action || "–"),
      el("td", {}, h.state), el("td", {}, iso(h.sent_at)), el("td", {}, iso(h.acked_at)), el("td", {}, h.error || ""))))));
  appendMore(main, moreButton("hints", res));
}

/* Header counts, on every refresh whatever the view: one request
 * (GET /api/v1/summary, counted on the store's indexes). */
async function counts() {
  summary = await api("/api/v1/summary");
  const o = summary.incidents.open;
  const set = (id, v) => {
    const c = document.getElementById(id);
    c.querySelector(".n").textContent = v;
    c.classList.toggle("zero", v === 0);
  };
  set("c-p1", o.P1);
  set("c-p2", o.P2);
  set("c-p3", o.P3 + o.P4 + o.P5);
  set("c-ack", summary.incidents.acknowledged.total);
  set("c-prob", summary.problems.open);
  set("c-agents", summary.agents.connected + "/" + summary.agents.total);
}

const views = {
  incidents: viewIncidents, incident: viewIncident, problems: viewProblems, problem: viewProblem,
  agents: viewAgents, charts: viewCharts, hints: viewHints,
};

/*
 * Only the view on screen is read, and nothing while the tab is hidden
 * (visibilitychange refreshes at once when it is shown again).
 */
async function refresh() {
  if (busy || !document.getElementById("login").hidden || document.visibilityState === "hidden") return;
  busy = true;
  const [name, arg] = (location.hash.slice(1) || "incidents").split("/");
  const view = views[name] || viewIncidents;
  if (location.hash !== shownView) {
    pages = {};
    shownView = location.hash;
  }
  for (const a of document.querySelectorAll("nav a"))
    a.classList.toggle("on", a.dataset.view === name || a.dataset.view + "s" === name);
  const main = el("main", { id: "view" });
  try {
    /* The header first: the views show its totals. */
    await counts();
    await view(main, arg);
    /* Swapped whole: a refresh never leaves half a page. */
    document.getElementById("view").replaceWith(main);
    setText("status", "updated " + new Date().toLocaleTimeString() + (role === "operator" ? " · operator" : " · read-only"));
    document.getElementById("status").className = "";
  } catch (e) {
    setText("status", "error: " + e.message);
    document.getElementById("status").className = "error";
  } finally {
    busy = false;
  }
}

function showLogin(msg) {
  document.getElementById("login").hidden = false;
  document.getElementById("view").hidden = true;
  setText("login-error", msg || "");
  setText("status", "signed out");
}

/* The role: an action on an id that cannot exist answers 404 to an
 * operator (nothing recorded) and 403 to a viewer. */
async function probeRole() {
  role = "viewer";
  if (!token) return;
  try {
    await api("/api/v1/incidents/9223372036854775807/note", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: '{"text":"probe"}',
    });
  } catch (e) {
    if (e.status === 404) role = "operator";
  }
}

async function start() {
  document.getElementById("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    token = document.getElementById("token").value.trim();
    try {
      await api("/api/v1/agents");
    } catch (e) {
      showLogin("token refused: " + e.message);
      return;
    }
    sessionStorage.setItem("tocsin-token", token);
    document.getElementById("token").value = "";
    document.getElementById("login").hidden = true;
    document.getElementById("view").hidden = false;
    document.getElementById("logout").hidden = false;
    await probeRole();
    refresh();
  });
  document.getElementById("logout").addEventListener("click", () => {
    sessionStorage.removeItem("tocsin-token");
    token = "";
    role = "viewer";
    document.getElementById("logout").hidden = true;
    showLogin("");
  });
  window.addEventListener("hashchange", refresh);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
  });
  /* Anonymous reads (api.anonymous_read) need no token: try first. */
  try {
    await api("/api/v1/agents");
  } catch (e) {
    if (e.status !== 401) setText("status", "error: " + e.message);
    return void (timer = setInterval(refresh, REFRESH_MS));
  }
  document.getElementById("logout").hidden = !token;
  await probeRole();
  await refresh();
  timer = setInterval(refresh, REFRESH_MS);
}

start();
