// The owlmesh dashboard's script: keeps the page live from the server's event stream
// (/api/events: a whole `snapshot` first, then an `update` after every poll round) and draws
// the charts as plain SVG. No libraries, no build step.
"use strict";

const HOUR_MS = 60 * 60 * 1000;
const MAX_POINTS = 4000;
const MAX_EVENTS = 100;
const SVG = "http://www.w3.org/2000/svg";

/** Everything the page shows, as last received. */
const state = {
  series: new Map(),
  members: [],
  jobs: [],
  events: [],
  failures: [],
  totals: {},
  primary: null,
  atMs: 0,
  windowMs: 60 * 1000,
};

// ---- receiving -------------------------------------------------------------------------

function connect() {
  const connection = document.getElementById("connection");
  const source = new EventSource("/api/events");
  source.addEventListener("snapshot", (message) => {
    applySnapshot(JSON.parse(message.data));
    setConnection(connection, "live");
    render();
  });
  source.addEventListener("update", (message) => {
    applyUpdate(JSON.parse(message.data));
    setConnection(connection, "live");
    render();
  });
  // EventSource reconnects by itself; the server then sends a whole snapshot again.
  source.onerror = () => setConnection(connection, "lost");
}

function setConnection(element, value) {
  element.dataset.state = value;
  element.textContent = value === "live" ? "live" : "reconnecting…";
}

function applyPicture(picture) {
  state.members = picture.members;
  state.jobs = picture.jobs;
  state.failures = picture.failures;
  state.totals = picture.totals;
  state.primary = picture.primary;
  state.atMs = picture.at_ms;
}

function applySnapshot(snapshot) {
  applyPicture(snapshot);
  state.events = snapshot.events;
  state.series = new Map(snapshot.series.map((series) => [series.key, series]));
}

function applyUpdate(update) {
  applyPicture(update);
  state.events = update.events.concat(state.events).slice(0, MAX_EVENTS);
  for (const incoming of update.series) {
    const known = state.series.get(incoming.key);
    if (!known) {
      state.series.set(incoming.key, incoming);
      continue;
    }
    for (const point of incoming.points) {
      const last = known.points[known.points.length - 1];
      if (!last || point[0] > last[0]) known.points.push(point);
    }
  }
  forgetOldPoints(update.at_ms - HOUR_MS);
}

/** Keeps the browser's copy as bounded as the server's: an hour, a few thousand points. */
function forgetOldPoints(fromMs) {
  for (const [key, series] of state.series) {
    let first = 0;
    while (first < series.points.length && series.points[first][0] < fromMs) first++;
    first = Math.max(first, series.points.length - MAX_POINTS);
    if (first > 0) series.points.splice(0, first);
    if (series.points.length === 0) state.series.delete(key);
  }
}

// ---- formatting ------------------------------------------------------------------------

function formatCount(value) {
  if (value === null || value === undefined) return "–";
  return Math.round(value).toLocaleString("en-US");
}

function formatRate(value) {
  if (value === null || value === undefined) return "–";
  return value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toFixed(1);
}

function formatDuration(ms) {
  if (ms === null || ms === undefined) return "–";
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
}

function formatTime(ms) {
  return new Date(ms).toLocaleTimeString("en-GB", { hour12: false });
}

function shortId(id) {
  return id.length > 12 ? id.slice(0, 8) : id;
}

function jobName(jobId) {
  const job = state.jobs.find((candidate) => candidate.id === jobId);
  return job ? `${job.name} ${shortId(job.id)}` : shortId(jobId);
}

/** An element with attributes and children (strings become text). */
function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined) continue;
    if (name === "class") element.className = value;
    else if (name.startsWith("data-")) element.setAttribute(name, String(value));
    else element.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

function setValue(id, value, text) {
  const element = document.getElementById(id);
  element.dataset.value = value === null || value === undefined ? "" : String(value);
  element.textContent = text;
}

// ---- rendering -------------------------------------------------------------------------

function render() {
  renderTiles();
  renderChart("queue-chart", "queue-legend", "queues");
  renderChart("throughput-chart", "throughput-legend", "throughput");
  renderMembers();
  renderJobs();
  renderEvents();
  const updated = document.getElementById("updated-at");
  updated.dataset.atMs = String(state.atMs);
  updated.textContent = state.atMs ? formatTime(state.atMs) : "never";
}

function renderTiles() {
  const totals = state.totals;
  setValue("frontier-total", totals.frontier, formatCount(totals.frontier));
  setValue("in-flight-total", totals.in_flight, formatCount(totals.in_flight));
  setValue("pages-rate", totals.pages_per_second, formatRate(totals.pages_per_second));
  setValue("items-rate", totals.items_per_second, formatRate(totals.items_per_second));
  setValue("errors-rate", totals.errors_per_second, formatRate(totals.errors_per_second));
  setValue("members-live", totals.live_members, formatCount(totals.live_members));
  setValue("members-gone", totals.gone_members, formatCount(totals.gone_members));
  setValue("primary-dispatcher", state.primary, state.primary || "none");
}

// ---- charts ----------------------------------------------------------------------------

const FIXED_COLOURS = {
  frontier: "#2563eb",
  in_flight: "#f59e0b",
  pages_per_second: "#15803d",
  items_per_second: "#7c3aed",
  errors_per_second: "#c2410c",
};
const PALETTE = ["#0891b2", "#db2777", "#65a30d", "#9333ea", "#ea580c", "#0d9488", "#4f46e5", "#b45309", "#be123c", "#0369a1"];

function colourOf(series) {
  if (!series.subject) return FIXED_COLOURS[series.metric] || "#334155";
  let hash = 0;
  for (const char of series.key) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

function labelOf(series) {
  const subject = series.subject;
  switch (series.metric) {
    case "frontier": return subject ? `frontier · ${jobName(subject)}` : "frontier (all jobs)";
    case "in_flight": return subject ? `in flight · ${jobName(subject)}` : "in flight (all jobs)";
    case "inbox": return `inbox · ${subject}`;
    case "outbox": return `outbox · ${subject}`;
    case "pages_per_second": return "pages/s";
    case "items_per_second": return "items/s";
    case "errors_per_second": return "errors/s";
    default: return series.key;
  }
}

/** A per-job series while there is only one job: the same line as the total. */
function duplicatesTotal(series) {
  if (!series.subject || (series.metric !== "frontier" && series.metric !== "in_flight")) return false;
  const perJob = [...state.series.values()].filter((other) => other.metric === series.metric && other.subject);
  return perJob.length === 1;
}

/** Drawing order: totals first (under), then per-job, then per-instance. */
function seriesOrder(a, b) {
  const rank = (series) => (series.subject ? (series.metric === "frontier" || series.metric === "in_flight" ? 1 : 2) : 0);
  return rank(a) - rank(b) || a.key.localeCompare(b.key);
}

/**
 * A round upper bound for the y axis, its tick step and how many decimals the ticks need.
 * Counts get whole steps; an empty chart still gets a few ticks.
 */
function niceScale(max, integral) {
  const floor = integral ? 4 : 2;
  const rough = Math.max(max, floor) / 4;
  const magnitude = Math.pow(10, Math.floor(Math.log10(rough)));
  const multiples = integral ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  let step = Number(multiples.map((m) => m * magnitude).find((s) => s >= rough).toPrecision(2));
  if (integral) step = Math.max(1, Math.round(step));
  const decimals = Math.min(2, (String(step).split(".")[1] || "").length);
  return { top: Math.ceil(Math.max(max, floor) / step) * step, step, decimals };
}

function svgElement(tag, attributes) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

function renderChart(svgId, legendId, chart) {
  const svg = document.getElementById(svgId);
  const width = svg.clientWidth || 600;
  const height = svg.clientHeight || 190;
  const pad = { left: 46, right: 8, top: 8, bottom: 18 };
  const toMs = state.atMs || Date.now();
  const fromMs = toMs - state.windowMs;
  const all = [...state.series.values()].filter((series) => series.chart === chart && !duplicatesTotal(series)).sort(seriesOrder);
  const shown = all
    .map((series) => ({ series, points: series.points.filter((point) => point[0] >= fromMs) }))
    .filter((entry) => entry.points.length > 0);

  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.dataset.series = String(shown.length);
  svg.dataset.updatedAt = String(state.atMs);
  const max = Math.max(0, ...shown.flatMap((entry) => entry.points.map((point) => point[1])));
  const scale = niceScale(max, chart === "queues");
  const x = (ms) => pad.left + ((ms - fromMs) / state.windowMs) * (width - pad.left - pad.right);
  const y = (value) => pad.top + (1 - value / scale.top) * (height - pad.top - pad.bottom);

  for (let tick = 0; tick <= scale.top + scale.step / 2; tick += scale.step) {
    svg.append(svgElement("line", { class: "grid", x1: pad.left, x2: width - pad.right, y1: y(tick), y2: y(tick) }));
    const label = svgElement("text", { class: "axis-label", x: pad.left - 4, y: y(tick) + 3, "text-anchor": "end" });
    label.textContent = tick.toLocaleString("en-US", { minimumFractionDigits: scale.decimals, maximumFractionDigits: scale.decimals });
    svg.append(label);
  }
  const stepMs = state.windowMs > 10 * 60 * 1000 ? 10 * 60 * 1000 : state.windowMs > 2 * 60 * 1000 ? 60 * 1000 : 10 * 1000;
  for (let ago = 0; ago <= state.windowMs; ago += stepMs) {
    const label = svgElement("text", { class: "axis-label", x: x(toMs - ago), y: height - 4, "text-anchor": ago === 0 ? "end" : "middle" });
    label.textContent = ago === 0 ? "now" : ago < 60000 || ago % 60000 ? `-${ago / 1000}s` : `-${ago / 60000}m`;
    svg.append(label);
  }
  if (shown.length === 0) {
    const empty = svgElement("text", { class: "empty", x: width / 2, y: height / 2, "text-anchor": "middle" });
    empty.textContent = "waiting for data…";
    svg.append(empty);
  }
  for (const { series, points } of shown) {
    const line = svgElement("polyline", {
      points: points.map((point) => `${x(point[0]).toFixed(1)},${y(point[1]).toFixed(1)}`).join(" "),
      stroke: colourOf(series),
      class: series.subject ? "per-subject" : "total",
      "data-series": series.key,
      "data-points": points.length,
      "data-last": points[points.length - 1][1],
    });
    const title = svgElement("title", {});
    title.textContent = labelOf(series);
    line.append(title);
    svg.append(line);
  }
  renderLegend(legendId, shown, chart);
}

function renderLegend(legendId, shown, chart) {
  const legend = document.getElementById(legendId);
  legend.replaceChildren(
    ...shown.map(({ series, points }) => {
      const [atMs, value] = points[points.length - 1];
      // A series that stopped (a finished job, a gone instance) has no current value.
      const current = atMs >= state.atMs;
      const text = !current ? "–" : chart === "throughput" ? formatRate(value) : formatCount(value);
      return el(
        "li",
        { "data-series": series.key, "data-value": current ? value : null, class: current ? null : "stale" },
        el("span", { class: "swatch", style: `background:${colourOf(series)}` }),
        labelOf(series),
        el("span", { class: "legend-value" }, text),
      );
    }),
  );
}

// ---- members ---------------------------------------------------------------------------

function queueDepth(member, name) {
  const queue = member.queues.find((candidate) => candidate.name === name && Object.keys(candidate.labels).length === 0);
  return queue ? queue.depth : null;
}

function counterOf(member, name) {
  return member.counters.find((candidate) => candidate.name === name && Object.keys(candidate.labels).length === 0);
}

/** The one rate that says most about a member of its kind: counter and how to call it. */
const HEADLINE_RATES = {
  scraper: ["pages_fetched", "pages/s"],
  archiver: ["pages_stored", "stored/s"],
  dispatcher: ["outcomes", "outcomes/s"],
  directory: ["heartbeats", "heartbeats/s"],
  monitoring: ["polls", "polls/s"],
};

function headlineRate(member) {
  const [name, unit] = HEADLINE_RATES[member.kind] || [];
  const counter = name && counterOf(member, name);
  if (!counter || counter.rate === null || counter.rate === undefined) return null;
  return `${formatRate(counter.rate)} ${unit}`;
}

function roleOf(member) {
  if (member.kind !== "dispatcher") {
    // Its own word for its state, when it adds something to the state column.
    return member.status && member.status !== member.state ? el("span", { class: "muted" }, member.status) : "";
  }
  const role = member.primary ? "primary" : member.status === "primary" ? "primary" : "standby";
  return el("span", { class: `badge ${role}` }, role);
}

function memberRow(member) {
  const load = member.load ? `${member.load.free_slots} free · ${formatCount(member.load.queue_depth)}` : "–";
  const inbox = queueDepth(member, "inbox");
  const outbox = queueDepth(member, "outbox");
  const boxes = inbox === null && outbox === null ? "–" : `${inbox === null ? "–" : formatCount(inbox)} · ${outbox === null ? "–" : formatCount(outbox)}`;
  const hosts = counterOf(member, "hosts_owned");
  const stateText = member.state === "gone" && member.gone_since_ms ? `gone ${formatDuration(state.atMs - member.gone_since_ms)}` : member.state;
  return el(
    "tr",
    { "data-kind": member.kind, "data-id": member.id, "data-state": member.state, "data-primary": member.primary ? "true" : "false", title: member.last_error || null },
    el("td", { class: "id" }, member.id),
    el("td", { class: "address" }, member.address),
    el("td", { "data-field": "state" }, el("span", { class: `badge ${member.state}` }, stateText)),
    el("td", { "data-field": "role" }, roleOf(member)),
    el("td", { "data-field": "load" }, load),
    el("td", { "data-field": "boxes", "data-inbox": inbox, "data-outbox": outbox }, boxes),
    el("td", { "data-field": "hosts_owned", "data-value": hosts ? hosts.value : null }, hosts ? formatCount(hosts.value) : "–"),
    el("td", { "data-field": "rate" }, headlineRate(member) || "–"),
    el("td", { "data-field": "uptime" }, formatDuration(member.uptime_ms)),
  );
}

function renderMembers() {
  const body = document.querySelector("#members tbody");
  const rows = [];
  const kinds = [...new Set(state.members.map((member) => member.kind))];
  for (const kind of kinds) {
    const members = state.members.filter((member) => member.kind === kind);
    const live = members.filter((member) => member.state !== "gone").length;
    rows.push(el("tr", { class: "kind-row", "data-kind-header": kind }, el("th", { colspan: 9 }, `${kind} · ${live} live${live < members.length ? `, ${members.length - live} gone` : ""}`)));
    rows.push(...members.map(memberRow));
  }
  body.replaceChildren(...rows);
  document.getElementById("members-summary").textContent = `${state.members.length} instances`;
}

// ---- jobs and events -------------------------------------------------------------------

function percent(part, whole) {
  return whole > 0 ? `${((100 * part) / whole).toFixed(2)}%` : "0%";
}

function jobItem(job) {
  const known = job.done + job.failed + job.queued + job.in_flight;
  return el(
    "li",
    { "data-job-id": job.id, "data-state": job.state, "data-queued": job.queued, "data-in-flight": job.in_flight, "data-done": job.done, "data-failed": job.failed, "data-items": job.items, "data-progress": job.progress.toFixed(4) },
    el("div", { class: "job-title" }, el("span", {}, el("span", { class: "name" }, job.name), " ", el("span", { class: "muted" }, shortId(job.id))), el("span", { class: `badge ${job.state === "running" ? "busy" : "idle"}` }, `${job.state} · epoch ${job.epoch}`)),
    el("div", { class: "bar", role: "progressbar", "aria-valuenow": Math.round(job.progress * 100), "aria-valuemin": 0, "aria-valuemax": 100 },
      el("div", { class: "done", style: `width:${percent(job.done, known)}` }),
      el("div", { class: "failed", style: `width:${percent(job.failed, known)}` }),
      el("div", { class: "in-flight", style: `width:${percent(job.in_flight, known)}` })),
    el("div", { class: "job-figures" },
      el("span", {}, el("b", {}, `${Math.round(job.progress * 100)}%`)),
      el("span", {}, "queued ", el("b", {}, formatCount(job.queued))),
      el("span", {}, "in flight ", el("b", {}, formatCount(job.in_flight))),
      el("span", {}, "done ", el("b", {}, formatCount(job.done))),
      el("span", {}, "failed ", el("b", {}, formatCount(job.failed))),
      el("span", {}, "items ", el("b", {}, formatCount(job.items)))),
  );
}

function renderJobs() {
  const list = document.getElementById("jobs");
  const items = state.jobs.slice(0, 8).map(jobItem);
  list.replaceChildren(...(items.length ? items : [el("li", { class: "empty-note" }, state.primary ? "no jobs yet" : "no dispatcher")]));
  const running = state.jobs.filter((job) => job.state === "running").length;
  document.getElementById("jobs-summary").textContent = `${state.jobs.length} jobs, ${running} running`;
}

function pathOf(url) {
  try {
    const parsed = new URL(url);
    return parsed.pathname + parsed.search;
  } catch {
    return url;
  }
}

function eventItem(event) {
  // Outcomes say how they went; other events say what they are.
  const what = event.status ? `${event.status}${event.http_status ? ` ${event.http_status}` : ""}` : event.kind.replace("_", " ");
  const detail = event.url ? pathOf(event.url) : event.message || jobName(event.job_id);
  return el(
    "li",
    { class: event.failure ? "failure" : null, "data-kind": event.kind, "data-status": event.status, "data-failure": event.failure ? "true" : "false", title: [event.url, event.message].filter(Boolean).join("\n") || null },
    el("span", { class: "time" }, formatTime(event.at_ms)),
    el("span", {}, el("span", { class: `badge ${event.failure ? "failure" : "idle"}` }, what)),
    el("span", { class: "url" }, detail, event.failure && event.message ? el("span", { class: "message muted" }, ` — ${event.message}`) : null),
  );
}

function renderEvents() {
  document.getElementById("failures").replaceChildren(...state.failures.slice(0, 5).map(eventItem));
  const events = state.events.map(eventItem);
  document.getElementById("events").replaceChildren(...(events.length ? events : [el("li", { class: "empty-note" }, "no events yet")]));
  document.getElementById("events-summary").textContent = `${state.events.length} latest, ${state.failures.length} failures`;
}

// ---- start -----------------------------------------------------------------------------

for (const button of document.querySelectorAll(".window button")) {
  button.addEventListener("click", () => {
    state.windowMs = Number(button.dataset.window);
    for (const other of document.querySelectorAll(".window button")) other.classList.toggle("active", other === button);
    render();
  });
}
window.addEventListener("resize", render);
connect();
