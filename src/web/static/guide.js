// The API guide page: the guide document (/guide.md) with preview and copy, the API key box,
// the three "try it" steps (create a job, stream its SSE results, hurry URLs), the endpoint and
// field tables and the code examples (all taken from /guide.md), and the live /pool panel.
"use strict";

const KEY_STORE = "panlink.apiKey";
const REMEMBER_MS = 30 * 24 * 3600 * 1000;
const EXAMPLE_BASE = "http://127.0.0.1:8080";
const EXAMPLE_KEY = "sk_your_key";

const $ = (id) => document.getElementById(id);
const configuredBase = document.querySelector('meta[name="panlink-public-base-url"]').content.trim();
const BASE = (configuredBase && !configuredBase.startsWith("__") ? configuredBase : location.origin).replace(/\/+$/, "");

let guideText = "";
let currentJob = null;
let streamAbort = null;

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// Inline Markdown of a table cell: `code`, **bold**, and nothing else.
function inline(md) {
  return escapeHtml(md)
    .replace(/`([^`]+)`/g, (_, c) => `<code>${c}</code>`)
    .replace(/\*\*([^*]+)\*\*/g, (_, b) => `<strong>${b}</strong>`);
}

function splitRow(line) {
  // Cells are separated by "|" outside backticks ("svg|png" inside code stays whole).
  const cells = [];
  let cell = "", inCode = false;
  for (const ch of line.trim().replace(/^\|/, "").replace(/\|$/, "")) {
    if (ch === "`") inCode = !inCode;
    if (ch === "|" && !inCode) { cells.push(cell.trim()); cell = ""; } else cell += ch;
  }
  cells.push(cell.trim());
  return cells;
}

// The first table after the heading whose text is `title` (any level), as an HTML table.
function markdownTable(title) {
  const lines = guideText.split("\n");
  const start = lines.findIndex((l) => /^#{2,4} /.test(l) && l.replace(/^#+ /, "").split(" — ")[0].trim() === title);
  if (start < 0) return `<p class="error">文档中没有“${escapeHtml(title)}”一节</p>`;
  let i = start + 1;
  while (i < lines.length && !lines[i].startsWith("|")) {
    if (/^#{2,4} /.test(lines[i])) return "";
    i++;
  }
  const rows = [];
  for (; i < lines.length && lines[i].startsWith("|"); i++) rows.push(splitRow(lines[i]));
  const [head, , ...body] = rows;
  return `<table><thead><tr>${head.map((c) => `<th>${inline(c)}</th>`).join("")}</tr></thead><tbody>` +
    body.map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join("")}</tr>`).join("") + "</tbody></table>";
}

// The fenced code blocks of "## 代码示例", each under its "### title".
function codeExamples() {
  const section = guideText.split(/^## /m).find((s) => s.startsWith("代码示例"));
  if (!section) return [];
  const out = [];
  for (const part of section.split(/^### /m).slice(1)) {
    const title = part.split("\n")[0].trim();
    const code = /```[a-z]*\n([\s\S]*?)```/.exec(part);
    if (code) out.push({ title, code: code[1] });
  }
  return out;
}

function key() { return $("key").value.trim(); }

function fill(text) {
  let out = text.split(EXAMPLE_BASE).join(BASE);
  if (key()) out = out.split(EXAMPLE_KEY).join(key());
  return out;
}

// --- the API key box -------------------------------------------------------------------------

function loadKey() {
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(KEY_STORE) || "null"); } catch (_) { saved = null; }
  if (saved && typeof saved.key === "string" && saved.expiresAt > Date.now()) {
    $("key").value = saved.key;
    $("remember").checked = true;
  } else if (saved) {
    localStorage.removeItem(KEY_STORE);
  }
}

function saveKey() {
  if ($("remember").checked && key()) {
    localStorage.setItem(KEY_STORE, JSON.stringify({ key: key(), expiresAt: Date.now() + REMEMBER_MS }));
  } else {
    localStorage.removeItem(KEY_STORE);
  }
  renderCommands();
  renderExample();
}

// --- try it ----------------------------------------------------------------------------------

function shellQuote(text) { return "'" + text.replace(/'/g, "'\\''") + "'"; }

function jobBody() {
  return { text: $("sample-urls").value };
}

function renderCommands() {
  const k = key() || EXAMPLE_KEY;
  $("curl-create").textContent =
    `curl -s -X POST ${BASE}/jobs -H 'X-API-Key: ${k}' -H 'Content-Type: application/json' \\\n  -d ${shellQuote(JSON.stringify(jobBody()))}`;
  const job = currentJob ? currentJob.job_id : "<job_id>";
  $("curl-stream").textContent = `curl -sN ${BASE}/jobs/${job}/events -H 'X-API-Key: ${k}'`;
  const urls = $("urgent-urls").value.split("\n").map((u) => u.trim()).filter(Boolean);
  $("curl-urgent").textContent =
    `curl -s -X POST ${BASE}/jobs/${job}/urgent -H 'X-API-Key: ${k}' -H 'Content-Type: application/json' \\\n  -d ${shellQuote(JSON.stringify({ urls }))}`;
}

function show(id, text, isError) {
  const el = $(id);
  el.hidden = false;
  el.textContent = text;
  el.classList.toggle("error", Boolean(isError));
}

async function api(method, path, body) {
  if (!key()) throw new Error("请先在上方填写 API 密钥");
  const init = { method, headers: { "X-API-Key": key() } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(BASE + path, init);
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { json = null; }
  if (!response.ok) {
    const msg = json && json.msg ? `${json.msg}（${json.error}）` : text;
    throw new Error(`HTTP ${response.status}：${msg}`);
  }
  return json;
}

async function tryCreate() {
  $("try-create").disabled = true;
  try {
    currentJob = await api("POST", "/jobs", jobBody());
    show("create-out", JSON.stringify(currentJob, null, 2));
    $("try-stream").disabled = false;
    $("try-urgent").disabled = false;
    const urls = $("sample-urls").value.split("\n").map((l) => l.trim().split(/\s/)[0]).filter(Boolean);
    if (!$("urgent-urls").value.trim() && urls.length) $("urgent-urls").value = urls[urls.length - 1];
    renderCommands();
  } catch (err) {
    show("create-out", err.message, true);
  } finally {
    $("try-create").disabled = false;
  }
}

function resultText(data) {
  const cls = { valid: "ok", invalid: "bad", locked: "warn" }[data.state] || "muted";
  const name = data.share_name ? ` · ${escapeHtml(data.share_name)}` : "";
  const cached = data.cached ? " · 缓存" : "";
  const urgent = data.priority_used === "urgent" ? " · 加急" : "";
  return `<span class="${cls}">${escapeHtml(data.state)}</span> ${escapeHtml(data.reason)}${name}${cached}${urgent}`;
}

function addRow(id, event, data) {
  const tr = document.createElement("tr");
  tr.dataset.event = event;
  const time = new Date().toLocaleTimeString("zh-CN", { hour12: false });
  let provider = "", result = "";
  if (event === "result") {
    provider = data.provider || "—";
    result = resultText(data);
  } else if (event === "done") {
    const t = data.totals || {};
    result = `完成：共 ${t.total}，有效 ${t.valid}，失效 ${t.invalid}，需提取码 ${t.locked}，未能确定 ${t.unknown}`;
  }
  tr.innerHTML = `<td>${time}</td><td>${escapeHtml(id || "")}</td><td>${escapeHtml(event)}</td><td>${escapeHtml(provider)}</td><td>${result}</td>`;
  $("events").tBodies[0].appendChild(tr);
}

// A job's SSE stream over fetch (EventSource cannot send X-API-Key), resuming with
// Last-Event-ID after a dropped connection, until `done` or until `signal` aborts. Calls
// onEvent(id, event, data) for each event; resolves to whether `done` arrived.
async function followStream(streamUrl, signal, onEvent) {
  let lastId = null;
  let finished = false;
  while (!finished && !signal.aborted) {
    const headers = { "X-API-Key": key() };
    if (lastId) headers["Last-Event-ID"] = lastId;
    const response = await fetch(BASE + streamUrl, { headers, signal });
    if (!response.ok) throw new Error(`HTTP ${response.status}：${await response.text()}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let id = null, event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("id:")) id = line.slice(3).trim();
          else if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trim());
        }
        if (!data.length) continue;
        if (id) lastId = id;
        onEvent(id, event, JSON.parse(data.join("\n")));
        if (event === "done") finished = true;
      }
    }
  }
  return finished;
}

async function tryStream() {
  if (!currentJob) return;
  if (streamAbort) streamAbort.abort();
  const controller = new AbortController();
  streamAbort = controller;
  $("events").tBodies[0].innerHTML = "";
  $("stop-stream").disabled = false;
  $("stream-status").textContent = "已连接，等待结果…";
  try {
    const finished = await followStream(currentJob.stream_url, controller.signal, addRow);
    $("stream-status").textContent = finished ? "任务完成，服务端已关闭连接" : "已停止";
  } catch (err) {
    $("stream-status").textContent = controller.signal.aborted ? "已停止" : `出错：${err.message}`;
  } finally {
    $("stop-stream").disabled = true;
    if (streamAbort === controller) streamAbort = null;
  }
}

// --- paste and check -------------------------------------------------------------------------

let pasteJob = null;

// Checks every share link in the pasted text: the results appear as they come; when the job is
// done, its CSV export can be downloaded.
async function pasteCheck() {
  $("paste-start").disabled = true;
  $("paste-download").disabled = true;
  const rows = $("paste-results").tBodies[0];
  rows.innerHTML = "";
  try {
    pasteJob = await api("POST", "/jobs", { text: $("paste-text").value });
    $("paste-status").textContent = `共 ${pasteJob.total} 个链接，检测中…`;
    const finished = await followStream(pasteJob.stream_url, new AbortController().signal, (id, event, data) => {
      if (event !== "result") return;
      const tr = document.createElement("tr");
      tr.dataset.state = data.state;
      tr.innerHTML = `<td>${escapeHtml(data.item_id)}</td><td>${escapeHtml(data.url)}</td>` +
        `<td>${escapeHtml(data.provider || "—")}</td><td>${resultText(data)}</td>`;
      rows.appendChild(tr);
    });
    $("paste-status").textContent = finished ? `检测完成，共 ${rows.rows.length} 条结果` : "连接中断";
    $("paste-download").disabled = false;
  } catch (err) {
    $("paste-status").textContent = `出错：${err.message}`;
  } finally {
    $("paste-start").disabled = false;
  }
}

// The CSV export needs the API key, so it is fetched here and handed to the browser as a file.
async function pasteDownload() {
  if (!pasteJob) return;
  try {
    const response = await fetch(`${BASE}/jobs/${pasteJob.job_id}/results?format=csv`, { headers: { "X-API-Key": key() } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = `panlink-${pasteJob.job_id}.csv`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    $("paste-status").textContent = `下载失败：${err.message}`;
  }
}

async function tryUrgent() {
  if (!currentJob) return;
  const urls = $("urgent-urls").value.split("\n").map((u) => u.trim()).filter(Boolean);
  try {
    const counts = await api("POST", `/jobs/${currentJob.job_id}/urgent`, { urls });
    show("urgent-out", JSON.stringify(counts, null, 2));
  } catch (err) {
    show("urgent-out", err.message, true);
  }
}

// --- examples --------------------------------------------------------------------------------

let examples = [];
let selected = 0;

function renderExample() {
  if (!examples.length) return;
  $("example-code").textContent = fill(examples[selected].code);
  for (const [i, button] of [...$("example-tabs").children].entries()) {
    button.setAttribute("aria-selected", String(i === selected));
  }
}

function renderExamples() {
  examples = codeExamples();
  const tabs = $("example-tabs");
  tabs.innerHTML = "";
  examples.forEach((example, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("role", "tab");
    button.textContent = example.title;
    button.addEventListener("click", () => { selected = i; renderExample(); });
    tabs.appendChild(button);
  });
  renderExample();
}

// copyText is in copy.js.
async function copy(text, statusId) {
  try {
    await copyText(text);
    $(statusId).textContent = "已复制";
  } catch (err) {
    $(statusId).textContent = `复制失败：${err.message}`;
  }
}

// --- the guide document ----------------------------------------------------------------------

async function loadGuide() {
  try {
    const response = await fetch("/guide.md");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    guideText = await response.text();
  } catch (err) {
    $("guide-length").textContent = `文档加载失败：${err.message}`;
    return;
  }
  $("guide-length").textContent = `展开预览（全文约 ${guideText.length.toLocaleString("zh-CN")} 字符）`;
  $("guide-text").textContent = guideText;
  $("copy-guide").disabled = false;
  for (const el of document.querySelectorAll("[data-md-table]")) el.innerHTML = markdownTable(el.dataset.mdTable);
  renderExamples();
}

// --- system status ---------------------------------------------------------------------------

// The breaker's state as a reader says it (the API's value stays in the cell's title).
const CIRCUIT_LABELS = { closed: "正常", open: "已熔断（暂停检测）", half_open: "试探恢复中" };

function poolRow(name, p) {
  const s = p.states || {};
  const circuit = CIRCUIT_LABELS[p.circuit] ?? p.circuit ?? "";
  const cells = [name, p.queued, p.urgent_queued, p.in_flight, p.concurrency ?? "", p.checked_total,
    s.valid, s.invalid, s.locked, s.unknown, circuit];
  return `<tr>${cells.map((c) => `<td>${escapeHtml(c ?? 0)}</td>`).join("")}</tr>`;
}

async function refreshPool() {
  try {
    const response = await fetch(BASE + "/pool");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const pool = await response.json();
    const body = Object.entries(pool.providers || {})
      .map(([id, p]) => poolRow(`${p.name || id}（${id}）`, p)).join("");
    $("pool").tBodies[0].innerHTML = body;
    $("pool").tFoot.innerHTML = pool.totals ? poolRow("合计", pool.totals) : "";
    $("status-updated").textContent = ` 更新于 ${new Date().toLocaleTimeString("zh-CN", { hour12: false })}`;
    $("status-error").textContent = "";
  } catch (err) {
    $("status-error").textContent = `无法读取 /pool：${err.message}`;
  }
}

// --- wiring ----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("base").textContent = BASE;
  loadKey();
  renderCommands();
  $("key").addEventListener("input", saveKey);
  $("remember").addEventListener("change", saveKey);
  $("forget-key").addEventListener("click", () => { $("key").value = ""; $("remember").checked = false; saveKey(); });
  $("show-key").addEventListener("click", () => {
    const input = $("key");
    input.type = input.type === "password" ? "text" : "password";
    $("show-key").textContent = input.type === "password" ? "显示" : "隐藏";
  });
  $("sample-urls").addEventListener("input", renderCommands);
  $("urgent-urls").addEventListener("input", renderCommands);
  $("copy-base").addEventListener("click", () => copy(BASE, "copy-guide-status"));
  $("copy-guide").addEventListener("click", () => copy(guideText, "copy-guide-status"));
  $("copy-example").addEventListener("click", () => copy($("example-code").textContent, "copy-example-status"));
  $("try-create").addEventListener("click", tryCreate);
  $("try-stream").addEventListener("click", tryStream);
  $("stop-stream").addEventListener("click", () => streamAbort && streamAbort.abort());
  $("try-urgent").addEventListener("click", tryUrgent);
  $("paste-start").addEventListener("click", pasteCheck);
  $("paste-download").addEventListener("click", pasteDownload);
  loadGuide();
  refreshPool();
  setInterval(refreshPool, 3000);
});
