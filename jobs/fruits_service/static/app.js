// Fruits! mobile page: send the chosen photo to POST /v1/predictions and show the answer.
"use strict";

const $ = (id) => document.getElementById(id);

function percent(p) {
  return `${Math.round(p * 1000) / 10}%`;
}

function show(id, visible) {
  $(id).hidden = !visible;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function renderTop(top) {
  const list = $("top-list");
  list.replaceChildren();
  for (const guess of top) {
    const item = document.createElement("li");
    item.textContent = guess.fruit || guess.label;
    const share = document.createElement("span");
    share.textContent = percent(guess.probability);
    item.append(share);
    list.append(item);
  }
  show("top", top.length > 0);
}

function renderFacts(info) {
  const facts = $("facts");
  facts.replaceChildren();
  const rows = [["Species", info.species], ["Family", info.family],
    ["Origin", info.origin], ["Season", info.season]];
  for (const [name, value] of rows) {
    if (!value) continue;
    const term = document.createElement("dt");
    term.textContent = name;
    const detail = document.createElement("dd");
    detail.textContent = value;
    facts.append(term, detail);
  }
  $("description").textContent = info.description || "";
}

function render(answer) {
  if (answer.known) {
    const name = answer.fruit || answer.label;
    $("fruit-name").textContent = name;
    $("fruit-variety").textContent = answer.variety
      ? `Variety: ${answer.variety}` : (answer.label !== name ? answer.label : "");
    $("confidence").textContent = `${percent(answer.probability)} sure`;
    renderFacts(answer.info || {});
    show("result", true);
    show("unknown", false);
  } else {
    $("unknown-reason").textContent = answer.reason || "";
    show("result", false);
    show("unknown", true);
  }
  renderTop(answer.top || []);
  setStatus("");
  $(answer.known ? "result" : "unknown").scrollIntoView({ behavior: "smooth", block: "start" });
}

async function identify(file) {
  show("result", false);
  show("unknown", false);
  show("top", false);
  $("preview-image").src = URL.createObjectURL(file);
  show("preview", true);
  setStatus("Looking at your photo…");
  const form = new FormData();
  form.append("photo", file, file.name || "photo");
  try {
    const response = await fetch("/v1/predictions", { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) {
      setStatus(body.error ? body.error.message : `Error ${response.status}`, true);
      return;
    }
    render(body);
  } catch (error) {
    setStatus("Could not reach the service: check your connection and try again.", true);
  }
}

for (const id of ["camera", "library"]) {
  $(id).addEventListener("change", (event) => {
    const [file] = event.target.files;
    if (file) identify(file);
    event.target.value = "";
  });
}
