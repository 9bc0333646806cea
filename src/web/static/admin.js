// The key admin page: log in with the admin token (sessionStorage only), then list, create,
// disable/enable, delete keys, add points and change plans through /admin/api/keys.
// Every failed call shows the server's message; nothing is swallowed.
"use strict";

const TOKEN_STORE = "panlink.adminToken";
const $ = (id) => document.getElementById(id);

function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function time(value) {
  return value ? new Date(value).toLocaleString("zh-CN", { hour12: false }) : "—";
}

async function call(method, path, body) {
  const init = { method, headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_STORE) || ""}` } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { json = null; }
  if (!response.ok) {
    const err = new Error(json && json.msg ? `${json.msg}（HTTP ${response.status}，${json.error}）` : `HTTP ${response.status}：${text}`);
    err.status = response.status;
    throw err;
  }
  return json ? json.data : null;
}

function showError(err) {
  $("error").textContent = err ? err.message : "";
  if (err && err.status === 401) logout("管理令牌无效或已更换，请重新登录");
}

const SCOPES = ["links:read", "links:write", "checker", "webhooks", "security_check", "stats"];

function scopesCell(k) {
  const all = SCOPES.every((s) => k.scopes.includes(s));
  return all ? '<span class="muted">全部</span>' : k.scopes.map((s) => `<code>${escapeHtml(s)}</code>`).join(" ");
}

function row(k) {
  const status = k.disabled ? '<span class="bad">已停用</span>' : '<span class="ok">启用</span>';
  const plan = `<select data-act="plan" aria-label="套餐">${["free", "premium"].map((p) => `<option${p === k.plan ? " selected" : ""}>${p}</option>`).join("")}</select>`;
  const toggle = k.disabled
    ? '<button type="button" data-act="enable">启用</button>'
    : '<button type="button" data-act="disable">停用</button>';
  return `<tr data-id="${escapeHtml(k.id)}" data-name="${escapeHtml(k.name)}">
    <td>${escapeHtml(k.name)}</td><td><code>${escapeHtml(k.id.slice(0, 12))}</code></td><td>${plan}</td>
    <td>${escapeHtml(k.points)}</td><td style="white-space:nowrap">${status}</td><td>${time(k.created_at)}</td><td>${time(k.last_used_at)}</td>
    <td>${escapeHtml(k.requests)}</td><td>${scopesCell(k)}</td>
    <td><div class="row">${toggle}
      <input type="number" data-field="points" min="1" placeholder="积分" style="width:6rem" aria-label="增加积分">
      <button type="button" data-act="points">加积分</button>
      <button type="button" class="danger" data-act="delete">删除</button></div></td></tr>`;
}

async function refresh() {
  try {
    const data = await call("GET", "/admin/api/keys");
    $("keys").tBodies[0].innerHTML = data.keys.map(row).join("");
    $("key-count").textContent = `（${data.total}）`;
    showError(null);
  } catch (err) {
    showError(err);
  }
}

async function act(event) {
  const target = event.target;
  const action = target.dataset.act;
  if (!action) return;
  const tr = target.closest("tr");
  const id = tr.dataset.id;
  try {
    if (action === "disable" || action === "enable") {
      await call("PATCH", `/admin/api/keys/${id}`, { disabled: action === "disable" });
    } else if (action === "points") {
      const n = Number(tr.querySelector('[data-field="points"]').value);
      if (!Number.isInteger(n) || n === 0) throw new Error("请输入要增加的积分（整数，可为负数）");
      await call("PATCH", `/admin/api/keys/${id}`, { add_points: n });
    } else if (action === "delete") {
      if (!confirm(`确定删除密钥“${tr.dataset.name}”？使用它的客户端将立即无法访问，此操作不能撤销。`)) return;
      await call("DELETE", `/admin/api/keys/${id}`);
    } else if (action === "plan") {
      return;
    }
    await refresh();
  } catch (err) {
    showError(err);
  }
}

async function changePlan(event) {
  const select = event.target;
  if (select.dataset.act !== "plan") return;
  try {
    await call("PATCH", `/admin/api/keys/${select.closest("tr").dataset.id}`, { plan: select.value });
    await refresh();
  } catch (err) {
    showError(err);
  }
}

async function create(event) {
  event.preventDefault();
  try {
    const created = await call("POST", "/admin/api/keys", {
      name: $("new-name").value.trim(),
      plan: $("new-plan").value,
      points: Number($("new-points").value || 0),
      scopes: SCOPES.filter((s) => document.querySelector(`#new-scopes input[value="${s}"]`).checked),
    });
    $("secret").textContent = created.key;
    $("secret-box").hidden = false;
    $("copy-status").textContent = "";
    $("new-name").value = "";
    await refresh();
  } catch (err) {
    showError(err);
  }
}

function showManage(on) {
  $("login").hidden = on;
  $("manage").hidden = !on;
  $("logout").hidden = !on;
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_STORE);
  showManage(false);
  $("secret-box").hidden = true;
  $("login-error").textContent = message || "";
}

async function login(event) {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_STORE, $("token").value.trim());
  try {
    await call("GET", "/admin/api/keys");
    $("token").value = "";
    $("login-error").textContent = "";
    showManage(true);
    await refresh();
  } catch (err) {
    sessionStorage.removeItem(TOKEN_STORE);
    $("login-error").textContent = err.status === 401 ? "管理令牌错误" : err.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("create-form").addEventListener("submit", create);
  $("logout").addEventListener("click", () => logout());
  $("refresh").addEventListener("click", refresh);
  $("keys").addEventListener("click", act);
  $("keys").addEventListener("change", changePlan);
  // copyText and selectText are in copy.js.
  $("copy-secret").addEventListener("click", async () => {
    try {
      await copyText($("secret").textContent);
      $("copy-status").textContent = "已复制";
    } catch (err) {
      selectText($("secret"));
      $("copy-status").textContent = `复制失败：${err.message}（密钥已选中）`;
    }
  });
  if (sessionStorage.getItem(TOKEN_STORE)) {
    showManage(true);
    refresh();
  }
});
