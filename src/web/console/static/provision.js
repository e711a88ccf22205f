// The provisioning page's live progress: the batch's server-sent events
// (/provision/events, see src/web/console/batch_board.rs) shown as one row per order.
// Served by the console itself (CSP: script-src 'self'); text is set with textContent only.
"use strict";

// The page's texts, in its language, from the console's catalogue (src/web/console/texts):
// data-* attributes of the #jobs table, so this script holds no text of its own.
let T = {};

const STEPS = {
  claim: "stepClaim",
  init_token: "stepInitToken",
  init_pin: "stepInitPin",
  generate_key: "stepGenerateKey",
  issue_certificate: "stepIssueCertificate",
  dual_certificate: "stepDualCertificate",
  write_certificate: "stepWriteCertificate",
  write_seals: "stepWriteSeals",
  finish: "stepFinish",
};
const PHASES = { started: "phaseStarted", done: "phaseDone", skipped: "phaseSkipped", failed: "phaseFailed" };

// A catalogue pattern with its "{}" filled in order.
function fill(pattern, ...args) {
  let i = 0;
  return (pattern || "").replace(/\{\}/g, () => String(args[i++] ?? ""));
}

function stepLabel(step) {
  return T[STEPS[step]] || step;
}

function phaseLabel(phase) {
  return T[PHASES[phase]] || phase;
}

function jobRow(order) {
  const id = "job-" + order;
  let row = document.getElementById(id);
  if (row) {
    return row;
  }
  const body = document.querySelector("#jobs tbody");
  row = document.createElement("tr");
  row.id = id;
  row.dataset.order = order;
  for (const cls of ["order", "step", "state", "steps", "detail"]) {
    const cell = document.createElement("td");
    cell.className = cls;
    row.appendChild(cell);
  }
  row.querySelector("td.order").textContent = order;
  row.querySelector("td.steps").appendChild(document.createElement("ol")).className = "steps";
  setState(row, "running", T.jobRunning);
  body.appendChild(row);
  return row;
}

function setState(row, cls, text) {
  const cell = row.querySelector("td.state");
  cell.className = "state state-" + cls;
  cell.textContent = text;
}

function setStatus(text) {
  document.getElementById("batch-status").textContent = text;
}

function onStep(e) {
  const d = JSON.parse(e.data);
  const row = jobRow(d.order);
  row.querySelector("td.step").textContent = stepLabel(d.step) + fill(T.reasonSuffix, phaseLabel(d.phase));
  if (d.phase !== "started") {
    const item = document.createElement("li");
    item.dataset.step = d.step;
    item.className = d.phase;
    item.textContent = fill(T.withCode, stepLabel(d.step), phaseLabel(d.phase));
    row.querySelector("ol.steps").appendChild(item);
  }
}

function onFinished(e) {
  const d = JSON.parse(e.data);
  const row = jobRow(d.order);
  setState(row, d.ok ? "done" : "failed", d.ok ? T.jobDone : T.jobFailed);
  row.querySelector("td.detail").textContent =
    d.ok && d.token !== undefined ? fill(T.jobDetail, d.token, d.serial) : d.detail;
}

function onSkipped(e) {
  const d = JSON.parse(e.data);
  const row = jobRow(d.order);
  setState(row, "skipped", T.jobSkipped);
  row.querySelector("td.detail").textContent = d.why;
}

function watch() {
  T = document.getElementById("jobs").dataset;
  const source = new EventSource("/provision/events");
  source.addEventListener("begin", (e) => {
    const d = JSON.parse(e.data);
    setStatus(fill(T.batchBegun, d.by, d.total));
    document.getElementById("batch-status").dataset.state = "running";
  });
  source.addEventListener("job", (e) => jobRow(JSON.parse(e.data).order));
  source.addEventListener("step", onStep);
  source.addEventListener("finished", onFinished);
  source.addEventListener("skipped", onSkipped);
  source.addEventListener("stopping", (e) => {
    setStatus(fill(T.batchStopping, JSON.parse(e.data).by));
    document.getElementById("batch-status").dataset.state = "stopping";
  });
  source.addEventListener("end", (e) => {
    const d = JSON.parse(e.data);
    const status = document.getElementById("batch-status");
    status.dataset.state = "ended";
    for (const id of ["batch-running", "stop-form"]) {
      const shown = document.getElementById(id);
      if (shown) {
        shown.hidden = true;
      }
    }
    if (d.error) {
      setStatus(fill(T.batchNotRun, d.error));
    } else {
      const pattern = d.stopped ? T.batchStopped : T.batchEnded;
      setStatus(fill(pattern, d.ok, d.failed, d.skipped, d.not_started));
    }
    source.close();
  });
}

document.addEventListener("DOMContentLoaded", watch);
