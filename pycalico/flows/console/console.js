// pycalico's flow console (Whisker's role): a live table over whisker-backend's API on the
// same origin. `GET /flows?watch=true` streams bucket aggregates (an aggregate that grows
// comes again, whole: it replaces its row); the filters go to the server as whisker-backend's
// `filters` JSON, so the table holds only what matches. Every value from a record is put
// in the page as text, never as markup.
"use strict";

const MAX_ROWS = 2000;
const TEXT_FILTERS = ["source_namespaces", "source_names", "dest_namespaces", "dest_names"];
const REPORTERS = { Src: "Source", Dst: "Destination" };
const PENDING_NOTE =
  "Policies that would be enforced if a new connection was initiated now, and staged " +
  "policies were enforced.";

const rows = new Map(); // flow key -> {item, tr, detail}
let source = null;
let paused = false;
let waiting = [];
let drawScheduled = false;

const $ = (selector) => document.querySelector(selector);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === "") continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// --- filters ---

function formValues() {
  const values = {};
  for (const field of $("#filters").elements) {
    if (field.name && field.value.trim() !== "") values[field.name] = field.value.trim();
  }
  return values;
}

function whiskerFilters(values) {
  const filters = {};
  // Exact as well as Fuzzy: whisker-backend turns the names it shows (`Global`,
  // `PUBLIC NETWORK`) back into the stored ones (`-`, `pub`) for exact matches only.
  for (const name of TEXT_FILTERS) {
    if (values[name]) {
      filters[name] = [{ value: values[name], type: "Exact" }, { value: values[name], type: "Fuzzy" }];
    }
  }
  if (values.dest_ports) filters.dest_ports = [{ value: Number(values.dest_ports) }];
  if (values.protocols) filters.protocols = [{ value: values.protocols, type: "Exact" }];
  if (values.policies) filters.policies = [{ name: { value: values.policies, type: "Fuzzy" } }];
  if (values.actions) filters.actions = [values.actions];
  if (values.pending_actions) filters.pending_actions = [values.pending_actions];
  if (values.reporter) filters.reporter = values.reporter;
  return filters;
}

function streamUrl(values) {
  const params = new URLSearchParams({ watch: "true" });
  const since = values.since === undefined ? 900 : Number(values.since);
  if (since > 0) params.set("startTimeGte", String(-since));
  const filters = whiskerFilters(values);
  if (Object.keys(filters).length) params.set("filters", JSON.stringify(filters));
  return "/flows?" + params.toString();
}

function portIsValid() {
  const port = $("#filters").elements.dest_ports;
  const ok = port.value.trim() === "" || /^[0-9]{1,5}$/.test(port.value.trim());
  port.setCustomValidity(ok ? "" : "a port number");
  return ok;
}

// --- the stream ---

function setState(state, text) {
  const badge = $("#state");
  badge.className = "state " + state;
  badge.textContent = text || state;
}

function connect() {
  if (source) source.close();
  if (!portIsValid()) {
    setState("paused", "port?");
    return;
  }
  const values = formValues();
  history.replaceState(null, "", "#" + new URLSearchParams(values).toString());
  rows.clear();
  waiting = [];
  $("#flows tbody").replaceChildren();
  updateCount();
  setState("connecting");
  source = new EventSource(streamUrl(values));
  source.onopen = () => setState(paused ? "paused" : "live");
  source.onmessage = (event) => {
    waiting.push(JSON.parse(event.data));
    scheduleDraw();
  };
  source.onerror = () => {
    // The browser reconnects by itself; the aggregator then sends its backlog again, and
    // every aggregate replaces the row it already has.
    setState(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  };
}

function scheduleDraw() {
  if (paused || drawScheduled) return;
  drawScheduled = true;
  requestAnimationFrame(draw);
}

// --- the table ---

function flowKey(item) {
  return JSON.stringify([
    item.start_time, item.source_namespace, item.source_name, item.dest_namespace,
    item.dest_name, item.dest_port, item.protocol, item.reporter, item.action, item.policies,
  ]);
}

function draw() {
  drawScheduled = false;
  let added = false;
  for (const item of waiting) {
    const key = flowKey(item);
    const row = rows.get(key);
    if (row) {
      row.item = item;
      fillRow(row);
    } else {
      const tr = el("tr", { class: "flow" });
      tr.dataset.key = key;
      const created = { item, tr, detail: null };
      tr.addEventListener("click", () => toggleDetail(created));
      rows.set(key, created);
      fillRow(created);
      added = true;
    }
  }
  waiting = [];
  if (added) order();
  updateCount();
}

function newestFirst(a, b) {
  if (a.item.start_time !== b.item.start_time) return a.item.start_time < b.item.start_time ? 1 : -1;
  if (a.item.end_time !== b.item.end_time) return a.item.end_time < b.item.end_time ? 1 : -1;
  return 0;
}

function order() {
  const sorted = [...rows.values()].sort(newestFirst);
  for (const gone of sorted.splice(MAX_ROWS)) rows.delete(gone.tr.dataset.key);
  const body = $("#flows tbody");
  const wanted = [];
  for (const row of sorted) {
    wanted.push(row.tr);
    if (row.detail) wanted.push(row.detail);
  }
  body.replaceChildren(...wanted);
}

function updateCount() {
  $("#count").textContent = rows.size === 1 ? "1 flow" : `${rows.size} flows`;
  $("#empty").hidden = rows.size > 0;
}

function clock(rfc3339) {
  const when = new Date(rfc3339);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(when.getHours())}:${two(when.getMinutes())}:${two(when.getSeconds())}`;
}

function endpoint(namespace, name) {
  return el("span", {}, el("span", { class: "ns" }, namespace), " / ",
    el("span", { class: "name" }, name));
}

function badge(action) {
  return el("span", { class: "badge " + action }, action);
}

function policyRef(hit) {
  const scope = hit.namespace ? hit.namespace + "/" : "";
  return `${hit.kind} ${scope}${hit.name}`;
}

function describeHit(hit) {
  if (hit.kind === "EndOfTier") {
    const trigger = hit.trigger ? `, after ${policyRef(hit.trigger)} selected it` : "";
    return `end of tier ${hit.tier}${trigger}`;
  }
  if (hit.kind === "Profile") return `profile ${hit.name}, rule ${hit.rule_index}`;
  return `${policyRef(hit)}, rule ${hit.rule_index}`;
}

function decidingHit(hits) {
  return hits.length ? hits[hits.length - 1] : null;
}

function fillRow(row) {
  const item = row.item;
  const enforced = decidingHit(item.policies.enforced);
  const pending = decidingHit(item.policies.pending);
  const decided = el("td", { class: "decided" }, enforced ? describeHit(enforced) : "");
  if (pending && pending.action !== item.action) {
    decided.append(el("span", { class: "pending-verdict" }, "pending ", badge(pending.action)));
  }
  const start = el("td", { class: "time" }, clock(item.start_time));
  start.title = `${item.start_time} – ${item.end_time}`;
  row.tr.replaceChildren(
    start,
    el("td", { class: "action" }, badge(item.action)),
    el("td", { class: "source" }, endpoint(item.source_namespace, item.source_name)),
    el("td", { class: "destination" }, endpoint(item.dest_namespace, item.dest_name)),
    el("td", { class: "protocol" }, item.protocol),
    el("td", { class: "port" }, item.dest_port),
    el("td", { class: "reporter" }, REPORTERS[item.reporter] || item.reporter),
    decided,
  );
  if (row.detail) row.detail.replaceChildren(detailCell(item));
}

// --- a row's detail ---

function trace(hits, className) {
  if (!hits.length) return el("p", { class: "note " + className }, "none");
  const list = el("ol", { class: "trace " + className });
  for (const hit of hits) {
    list.append(
      el("li", {},
        el("span", { class: "tier" }, `[${hit.tier}] `),
        describeHit(hit), " → ", badge(hit.action)),
    );
  }
  return list;
}

function facts(item) {
  const list = el("dl", { class: "facts" });
  const add = (term, value) => list.append(el("dt", {}, term), el("dd", {}, value));
  add("Start – end", `${item.start_time} – ${item.end_time}`);
  add("Source", `${item.source_namespace}/${item.source_name} (${item.source_type || "?"})`);
  add("Source labels", item.source_labels || "—");
  add("Destination", `${item.dest_namespace}/${item.dest_name} (${item.dest_type || "?"})`);
  add("Destination labels", item.dest_labels || "—");
  add("Packets in / out", `${item.packets_in} / ${item.packets_out}`);
  add("Bytes in / out", `${item.bytes_in} / ${item.bytes_out}`);
  if (item.num_connections_started !== undefined) {
    add("Connections", `${item.num_connections_started} started, ` +
      `${item.num_connections_completed} completed, ${item.num_connections_live} live`);
  }
  return list;
}

function detailCell(item) {
  const grid = el("div", { class: "detail-grid" },
    el("section", {}, el("h3", {}, "Enforced policies"), trace(item.policies.enforced, "enforced")),
    el("section", {}, el("h3", {}, "Pending policies"), el("p", { class: "note" }, PENDING_NOTE),
      trace(item.policies.pending, "pending")),
    el("section", {}, el("h3", {}, "Flow"), facts(item)),
    el("section", { class: "raw-json" }, el("h3", {}, "Raw JSON"),
      el("pre", { class: "raw" }, JSON.stringify(item, null, 2))),
  );
  return el("td", { colspan: "8" }, grid);
}

function toggleDetail(row) {
  if (row.detail) {
    row.detail.remove();
    row.detail = null;
    row.tr.classList.remove("open");
    return;
  }
  row.detail = el("tr", { class: "detail" }, detailCell(row.item));
  row.tr.classList.add("open");
  row.tr.after(row.detail);
}

// --- hints for the text filters ---

async function loadHints(input) {
  const list = document.getElementById(input.getAttribute("list"));
  const params = new URLSearchParams({ type: input.dataset.hint, pageSize: "100" });
  try {
    const reply = await fetch("/flows-filter-hints?" + params.toString());
    if (!reply.ok) return;
    const body = await reply.json();
    list.replaceChildren(...body.items.map((hint) => el("option", { value: hint.value })));
  } catch (error) {
    // Hints are a convenience: without them the filter still works.
  }
}

// --- the lab page ---

// `calico-lab console` serves a lab page on the same origin (/lab/); calico-goldmane alone
// has none, so the link shows only when the lab page answers.
async function linkLabPage() {
  const link = $("#lab-link");
  try {
    const reply = await fetch("/lab/api/lab");
    if (reply.ok) {
      const lab = await reply.json();
      link.textContent = `lab ${lab.lab}: topology`;
      link.hidden = false;
    }
  } catch (error) {
    // No lab page: the flow console is all there is.
  } finally {
    link.dataset.asked = link.hidden ? "absent" : "linked";
  }
}

// --- wiring ---

function restoreFilters() {
  const saved = new URLSearchParams(location.hash.slice(1));
  for (const field of $("#filters").elements) {
    if (field.name) field.value = saved.get(field.name) || field.defaultValue || "";
  }
  for (const select of $("#filters").querySelectorAll("select")) {
    if (!saved.has(select.name)) {
      const chosen = [...select.options].find((option) => option.defaultSelected);
      select.value = chosen ? chosen.value : "";
    }
  }
}

function start() {
  restoreFilters();
  // An address with other filters (a link, back or forward) shows what it names.
  window.addEventListener("hashchange", () => {
    restoreFilters();
    connect();
  });
  const form = $("#filters");
  let timer = null;
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(connect, 300);
  };
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  form.addEventListener("reset", () => setTimeout(connect, 0));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    connect();
  });
  for (const input of form.querySelectorAll("input[data-hint]")) {
    input.addEventListener("focus", () => loadHints(input));
  }
  $("#pause").addEventListener("click", () => {
    paused = !paused;
    $("#pause").textContent = paused ? "Resume" : "Pause";
    setState(paused ? "paused" : "live");
    if (!paused) scheduleDraw();
  });
  connect();
  linkLabPage();
}

document.addEventListener("DOMContentLoaded", start);
