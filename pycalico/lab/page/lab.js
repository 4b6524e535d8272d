// pycalico's lab page, served by `calico-lab console` under /lab/ next to the flow console:
// the lab drawn by Graphviz (`calico-lab graph`), a pod's policies on click (the plan
// `calicoctl policy explain` walks) and `calico-lab trace` between two pods on request.
// Every value from the lab is put in the page as text, never as markup; the picture is
// Graphviz's SVG, parsed as SVG and adopted, so nothing in it runs.
"use strict";

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

function showError(id, message) {
  const p = $(id);
  p.textContent = message || "";
  p.hidden = !message;
}

// A JSON endpoint's answer, or an Error carrying its one-line message.
async function ask(url, options) {
  const reply = await fetch(url, options);
  const type = reply.headers.get("Content-Type") || "";
  if (!reply.ok) {
    let message = `${reply.status} ${reply.statusText}`;
    if (type.startsWith("application/json")) message = (await reply.json()).error || message;
    throw new Error(message);
  }
  return type.startsWith("application/json") ? reply.json() : reply.text();
}

// --- the picture ---

let selectedPod = "";

async function loadLab() {
  const lab = await ask("/lab/api/lab");
  document.title = `Lab ${lab.lab} · pycalico`;
  $("#lab-name").textContent = lab.lab;
  const form = $("#trace-form");
  for (const [name, pick] of [["from", 0], ["to", 1]]) {
    const select = form.elements[name];
    const kept = select.value;
    const options = lab.pods.map((p) => el("option", { value: p.pod, title: p.ip }, `${p.pod} (${p.node})`));
    // The external host stands in for the internet: a trace there shows the masquerade.
    if (name === "to") options.push(el("option", { value: lab.external }, `external (${lab.external})`));
    select.replaceChildren(...options);
    if ([...select.options].some((o) => o.value === kept)) select.value = kept;
    else if (select.options.length > pick) select.selectedIndex = pick;
  }
}

async function drawGraph() {
  const graph = $("#graph");
  graph.setAttribute("aria-busy", "true");
  try {
    const text = await ask("/lab/api/graph");
    const svg = new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
    if (svg.nodeName !== "svg") throw new Error("the picture is not SVG");
    graph.replaceChildren(document.adoptNode(svg));
    showError("#graph-error", "");
    if (selectedPod) markSelected(selectedPod);
  } catch (error) {
    showError("#graph-error", `cannot draw the lab: ${error.message}`);
  } finally {
    graph.setAttribute("aria-busy", "false");
  }
}

function podGroups() {
  return [...document.querySelectorAll("#graph g[data-pod]")];
}

function markSelected(pod) {
  for (const g of podGroups()) g.classList.toggle("selected", g.dataset.pod === pod);
}

function clearPath() {
  for (const g of document.querySelectorAll("#graph g.on-path")) {
    g.classList.remove("on-path", "dropped-here");
  }
}

function markPath(trace) {
  clearPath();
  const places = new Set(trace.steps.map((s) => s.where));
  for (const g of document.querySelectorAll("#graph g[data-pod], #graph g[data-node]")) {
    if (places.has(g.dataset.pod || g.dataset.node)) g.classList.add("on-path");
  }
  const drop = trace.steps.filter((s) => s.kind === "drop" || (s.kind === "policy" && !s.data.allowed));
  for (const step of drop) {
    for (const g of document.querySelectorAll("#graph g.on-path")) {
      if ((g.dataset.pod || g.dataset.node) === step.where) g.classList.add("dropped-here");
    }
  }
}

// --- a pod's policies ---

function ruleList(rules) {
  if (!rules.length) return el("p", { class: "muted" }, "no rules in this direction");
  return el("ul", { class: "rules" }, ...rules.map((r) => el("li", { class: r.split(" ")[0] }, r)));
}

function policyItem(p) {
  const order = p.order === null ? "no order (last)" : `order ${p.order}`;
  const where = p.namespace ? `${p.namespace}/` : "";
  return el(
    "li",
    { class: "policy", "data-policy": p.id },
    el("span", { class: "kind" }, p.kind, " "),
    el("span", { class: "policy-name" }, where + p.name),
    el("span", { class: "muted" }, ` · ${order} · selector `),
    el("span", { class: "selector" }, p.selector),
    ruleList(p.rules),
  );
}

function direction(view, name) {
  const tiers = view[name];
  const section = el("section", { class: `direction ${name}` }, el("h3", {}, name));
  if (!tiers.length) {
    section.append(
      el("p", { class: "muted" }, `No policy selects this pod for ${name}: its profiles decide.`),
    );
    return section;
  }
  for (const tier of tiers) {
    section.append(
      el(
        "div",
        { class: "tier", "data-tier": tier.tier },
        el(
          "div",
          { class: "tier-head" },
          `tier ${tier.tier} (order ${tier.order}) · end of tier: ${tier.end_of_tier}`,
        ),
        el("ol", { class: "policies" }, ...tier.policies.map(policyItem)),
      ),
    );
  }
  return section;
}

function profileRules(direction, rules) {
  return el("span", { class: "muted" }, `${direction}: `, rules.length ? rules.join("; ") : "no rules");
}

function profilesSection(view) {
  const section = el("section", { class: "profiles" }, el("h3", {}, "profiles"));
  if (!view.profiles.length) section.append(el("p", { class: "muted" }, "none"));
  for (const p of view.profiles) {
    section.append(
      el(
        "div",
        { class: "profile", "data-profile": p.name },
        el("span", { class: "policy-name" }, p.name),
        p.missing ? el("span", { class: "error" }, "not in the datastore") : "",
        profileRules("ingress", p.ingress),
        " · ",
        profileRules("egress", p.egress),
      ),
    );
  }
  return section;
}

function traceButton(label, field, pod) {
  const button = el("button", { type: "button" }, label);
  button.addEventListener("click", () => {
    $("#trace-form").elements[field].value = pod;
  });
  return button;
}

let policiesAsked = 0;

async function showPolicies(pod) {
  selectedPod = pod;
  markSelected(pod);
  $("#policies-hint").hidden = true;
  const view = $("#policy-view");
  view.setAttribute("aria-busy", "true");
  const asked = ++policiesAsked;
  try {
    const p = await ask("/lab/api/policies?" + new URLSearchParams({ pod }).toString());
    if (asked !== policiesAsked) return; // another pod was clicked meanwhile: it shows
    const labels = Object.entries(p.labels).map(([k, v]) => `${k}=${v}`).join(" | ") || "none";
    view.replaceChildren(
      el(
        "dl",
        { class: "facts" },
        el("dt", {}, "pod"), el("dd", { id: "policy-pod" }, p.pod),
        el("dt", {}, "node"), el("dd", {}, p.node),
        el("dt", {}, "interface"), el("dd", {}, p.interface),
        el("dt", {}, "addresses"), el("dd", {}, p.addresses.join(", ")),
        el("dt", {}, "labels"), el("dd", {}, labels),
      ),
      direction(p, "ingress"),
      direction(p, "egress"),
      profilesSection(p),
      el(
        "div",
        { class: "actions" },
        traceButton("Trace from here", "from", p.pod),
        traceButton("Trace to here", "to", p.pod),
      ),
    );
    showError("#policies-error", "");
  } catch (error) {
    if (asked !== policiesAsked) return;
    view.replaceChildren();
    showError("#policies-error", error.message);
  } finally {
    view.setAttribute("aria-busy", "false");
  }
}

// --- a trace ---

function stepRow(step, index) {
  const denied = step.kind === "policy" && !step.data.allowed ? " denied" : "";
  return el(
    "tr",
    { class: `step ${step.kind}${denied}` },
    el("td", { class: "n" }, index + 1),
    el("td", { class: "where" }, step.where),
    el("td", { class: "step-kind" }, step.kind),
    el("td", {}, step.text),
  );
}

function showTrace(trace) {
  const good = trace.outcome.startsWith("delivered");
  $("#trace-view").replaceChildren(
    el(
      "p",
      {},
      el("span", { class: `outcome ${good ? "delivered" : "other"}`, id: "trace-outcome" }, trace.outcome),
      " ",
      trace.summary,
    ),
    el("p", { class: "muted" }, `${trace.source} → ${trace.destination}: ${trace.packet}`),
    el("table", { class: "steps" }, el("tbody", {}, ...trace.steps.map(stepRow))),
    trace.notes.length ? el("ul", { class: "notes" }, ...trace.notes.map((n) => el("li", {}, n))) : "",
  );
  markPath(trace);
}

async function runTrace(event) {
  event.preventDefault();
  const form = $("#trace-form");
  const request = { from: form.elements.from.value, to: form.elements.to.value, proto: form.elements.proto.value };
  const port = form.elements.port.value.trim();
  if (request.proto !== "icmp" && port !== "") request.port = /^[0-9]+$/.test(port) ? Number(port) : port;
  const button = $("#trace-button");
  button.disabled = true;
  button.textContent = "Tracing…";
  showError("#trace-error", "");
  try {
    showTrace(await ask("/lab/api/trace", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request),
    }));
  } catch (error) {
    $("#trace-view").replaceChildren();
    clearPath();
    showError("#trace-error", error.message);
  } finally {
    button.disabled = false;
    button.textContent = "Trace";
  }
}

// --- wiring ---

function podOf(event) {
  const g = event.target.closest ? event.target.closest("g[data-pod]") : null;
  return g ? g.dataset.pod : "";
}

async function refresh() {
  try {
    await loadLab();
  } catch (error) {
    showError("#graph-error", `cannot read the lab: ${error.message}`);
  }
  await drawGraph();
}

function start() {
  const graph = $("#graph");
  graph.addEventListener("click", (event) => {
    const pod = podOf(event);
    if (pod) showPolicies(pod);
  });
  graph.addEventListener("keydown", (event) => {
    const pod = podOf(event);
    if (pod && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      showPolicies(pod);
    }
  });
  const form = $("#trace-form");
  form.addEventListener("submit", runTrace);
  form.elements.proto.addEventListener("change", () => {
    form.elements.port.disabled = form.elements.proto.value === "icmp";
  });
  $("#redraw").addEventListener("click", refresh);
  refresh();
}

document.addEventListener("DOMContentLoaded", start);
