// The provisioning page's live progress: the batch's server-sent events
// (/provision/events, see src/web/console/batch_board.rs) shown as one row per order.
// Served by the console itself (CSP: script-src 'self'); text is set with textContent only.
"use strict";

const STEP_LABELS = {
  claim: "领取订单",
  init_token: "初始化令牌",
  init_pin: "设置用户 PIN",
  generate_key: "生成密钥对",
  issue_certificate: "签发证书",
  dual_certificate: "加密证书（双证书）",
  write_certificate: "写入证书",
  write_seals: "写入电子印章",
  finish: "完成制作",
};
const PHASE_LABELS = { started: "进行中", done: "完成", skipped: "已完成（跳过）", failed: "失败" };

function stepLabel(step) {
  return STEP_LABELS[step] || step;
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
  setState(row, "running", "进行中");
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
  row.querySelector("td.step").textContent =
    stepLabel(d.step) + "：" + (PHASE_LABELS[d.phase] || d.phase);
  if (d.phase !== "started") {
    const item = document.createElement("li");
    item.dataset.step = d.step;
    item.className = d.phase;
    item.textContent = stepLabel(d.step) + "（" + (PHASE_LABELS[d.phase] || d.phase) + "）";
    row.querySelector("ol.steps").appendChild(item);
  }
}

function onFinished(e) {
  const d = JSON.parse(e.data);
  const row = jobRow(d.order);
  setState(row, d.ok ? "done" : "failed", d.ok ? "已制作" : "失败");
  row.querySelector("td.detail").textContent = d.detail;
}

function onSkipped(e) {
  const d = JSON.parse(e.data);
  const row = jobRow(d.order);
  setState(row, "skipped", "已跳过");
  row.querySelector("td.detail").textContent = d.why;
}

function watch() {
  const source = new EventSource("/provision/events");
  source.addEventListener("begin", (e) => {
    const d = JSON.parse(e.data);
    setStatus("批量制作进行中：" + d.by + " 启动，共 " + d.total + " 个订单。");
    document.getElementById("batch-status").dataset.state = "running";
  });
  source.addEventListener("job", (e) => jobRow(JSON.parse(e.data).order));
  source.addEventListener("step", onStep);
  source.addEventListener("finished", onFinished);
  source.addEventListener("skipped", onSkipped);
  source.addEventListener("end", (e) => {
    const d = JSON.parse(e.data);
    const status = document.getElementById("batch-status");
    status.dataset.state = "ended";
    const running = document.getElementById("batch-running");
    if (running) {
      running.hidden = true;
    }
    if (d.error) {
      setStatus("批量制作未能运行：" + d.error);
    } else {
      setStatus("批量制作结束：成功 " + d.ok + " 个，失败 " + d.failed + " 个，跳过 " +
        d.skipped + " 个，未开始 " + d.not_started + " 个。");
    }
    source.close();
  });
}

document.addEventListener("DOMContentLoaded", watch);
