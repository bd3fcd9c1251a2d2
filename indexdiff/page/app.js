// The indexdiff playground: posts the form to /api/derive and shows the answer. Text is inserted as text; only
// the MathML that indexdiff generated (names escaped on the server) is inserted as markup.
"use strict";

const $ = (id) => document.getElementById(id);
const TABS = ["derivative", "steps", "matrix", "check", "cost", "python"];
let latest = 0;

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function math(markup) {
  const el = element("div", "math");
  el.innerHTML = markup;
  return el;
}

function selectTab(name) {
  for (const button of document.querySelectorAll("nav [role=tab]")) {
    const on = button.dataset.tab === name;
    button.setAttribute("aria-selected", on ? "true" : "false");
    $("panel-" + button.dataset.tab).hidden = !on;
  }
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("result").hidden = true;
}

function renderDerivative(panel, items) {
  panel.replaceChildren();
  for (const item of items) {
    const box = element("div", "derivative");
    box.append(element("h3", "", "∂/∂" + item.wrt.split(",").join(" ∂/∂")));
    box.append(math(item.mathml));
    box.append(element("pre", "index", item.text));
    panel.append(box);
  }
}

function renderSteps(panel, tab) {
  panel.replaceChildren();
  if (tab.status !== "ok" || !tab.items) {
    panel.append(element("pre", "note", tab.text));
    return;
  }
  for (const item of tab.items) {
    const box = element("div", "steps");
    box.append(element("h3", "", "∂/∂" + item.wrt));
    const list = element("ol");
    let previous = null;
    for (const step of item.steps) {
      const li = element("li");
      li.append(element("span", "rule", step.rule));
      if (step.note) li.append(element("span", "note", ": " + step.note));
      if (step.before !== previous) li.append(element("code", "before", step.before));
      const prefix = step.lhs ? step.lhs + " = " : "";
      const after = prefix && step.after.startsWith(prefix) ? step.after.slice(prefix.length) : step.after;
      li.append(element("code", "after", "= " + after));
      previous = step.after;
      list.append(li);
    }
    box.append(list);
    panel.append(box);
  }
}

function renderText(panel, tab, name) {
  panel.replaceChildren();
  const pre = element("pre", tab.status === "ok" ? "" : "note", tab.text);
  if (name === "check" && tab.status === "ok") pre.className = tab.ok ? "ok" : "failed";
  panel.append(pre);
}

function render(data) {
  $("error").hidden = true;
  $("result").hidden = false;
  $("shown").innerHTML = data.mathml;
  renderDerivative($("panel-derivative"), data.derivatives);
  renderSteps($("panel-steps"), data.tabs.steps);
  for (const name of ["matrix", "check", "cost"]) renderText($("panel-" + name), data.tabs[name], name);
  $("python-code").textContent = data.tabs.python.text;
  $("python-code").className = data.tabs.python.status === "ok" ? "" : "note";
  for (const button of document.querySelectorAll("nav [role=tab]")) {
    const tab = data.tabs[button.dataset.tab];
    button.classList.toggle("unavailable", Boolean(tab) && tab.status !== "ok");
  }
}

async function derive() {
  const request = ++latest;
  const body = { input: $("input").value, wrt: $("wrt").value, dims: $("dims").value, seed: 0 };
  $("status").textContent = "computing…";
  $("go").disabled = true;
  try {
    const response = await fetch("api/derive", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json();
    if (request !== latest) return;
    if (data.ok) render(data);
    else showError(data.error.message);
    document.body.dataset.state = data.ok ? "done" : "error";
  } catch (err) {
    if (request === latest) showError("no answer from the server: " + err);
    document.body.dataset.state = "error";
  } finally {
    if (request === latest) {
      $("status").textContent = "";
      $("go").disabled = false;
    }
  }
}

async function copyCode() {
  const text = $("python-code").textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch (err) {
    const range = document.createRange();
    range.selectNodeContents($("python-code"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    document.execCommand("copy");
  }
  $("copy").textContent = "Copied";
  setTimeout(() => { $("copy").textContent = "Copy"; }, 1500);
}

function start() {
  $("form").addEventListener("submit", (event) => { event.preventDefault(); derive(); });
  $("input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); derive(); }
  });
  for (const button of document.querySelectorAll("nav [role=tab]")) {
    button.addEventListener("click", () => selectTab(button.dataset.tab));
  }
  $("copy").addEventListener("click", copyCode);
  const query = new URLSearchParams(location.search);
  for (const name of ["input", "wrt", "dims"]) if (query.has(name)) $(name).value = query.get(name);
  if (query.has("tab") && TABS.includes(query.get("tab"))) selectTab(query.get("tab"));
  document.body.dataset.state = "ready";
  if (query.has("input")) derive();
}

start();
