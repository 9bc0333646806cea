// panlink's pages in a real browser (Debian's Chromium, driven by playwright-core), against a live
// server whose checker talks to `panlink mock-upstream`. Started by tests/web/run.sh, which passes
// PANLINK_BASE, PANLINK_ADMIN_TOKEN, PANLINK_KEY (a key with points) and SCREENSHOTS (a folder).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const BASE = process.env.PANLINK_BASE;
const ADMIN_TOKEN = process.env.PANLINK_ADMIN_TOKEN;
const KEY = process.env.PANLINK_KEY;
// A link's target under a name that is not this server's: every loopback name and address is the
// server itself, which a link may not point at. The browser resolves the name to this server
// (`--host-resolver-rules` below), so following the link needs no network.
const TARGET_HOST = "target.example";
const TARGET = `${BASE.replace("127.0.0.1", TARGET_HOST)}/health`;
const SHOTS = process.env.SCREENSHOTS || "target/screenshots";
mkdirSync(SHOTS, { recursive: true });

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
      "--no-first-run", "--disable-component-update", "--disable-sync",
      `--host-resolver-rules=MAP ${TARGET_HOST} 127.0.0.1`],
  });
});

after(async () => {
  await browser?.close();
});

// A fresh context and page that record console errors, failed requests and requests that
// leave this server (the pages must work offline).
async function open(path, { permissions = [] } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  if (permissions.length) await context.grantPermissions(permissions, { origin: BASE });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (msg) => { if (msg.type() === "error") problems.push(`console: ${msg.text()}`); });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("requestfailed", (req) => {
    // A stream the page aborted on purpose is not a failure.
    if (!req.failure()?.errorText.includes("ERR_ABORTED")) problems.push(`failed: ${req.url()} ${req.failure()?.errorText}`);
  });
  page.on("request", (req) => {
    const url = req.url();
    if (!url.startsWith(BASE) && !url.startsWith("data:") && !url.startsWith(`blob:${BASE}`)) problems.push(`left the server: ${url}`);
  });
  await page.goto(BASE + path, { waitUntil: "load" });
  return { context, page, problems };
}

async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

test("the guide page loads with no console errors and shows the whole guide", async () => {
  const { context, page, problems } = await open("/", { permissions: ["clipboard-read", "clipboard-write"] });
  await page.waitForFunction(() => document.getElementById("guide-length").textContent.includes("全文约"));
  const guide = await (await fetch(`${BASE}/guide.md`)).text();
  const summary = await page.textContent("#guide-length");
  assert.match(summary, new RegExp(`全文约 ${guide.length.toLocaleString("zh-CN")} 字符`));
  assert.equal(await page.textContent("#base"), BASE);
  // Tables and examples come from the guide document.
  assert.ok(await page.locator("#endpoints table").count() >= 5);
  assert.ok((await page.textContent("#fields")).includes("all_checks_passed"));
  assert.equal(await page.locator("#example-tabs button").count(), 5);
  assert.ok((await page.textContent("#example-code")).includes(`BASE=${BASE}`));
  await page.click("#copy-guide");
  await page.waitForFunction(() => document.getElementById("copy-guide-status").textContent === "已复制");
  const clipboard = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(clipboard, guide, "the copy button puts the whole guide in the clipboard");
  await shot(page, "guide");
  assert.deepEqual(problems, []);
  await context.close();
});

test("the API key is remembered across reloads and forgotten after 30 days", async () => {
  const { context, page, problems } = await open("/");
  await page.fill("#key", KEY);
  await page.check("#remember");
  await page.reload();
  assert.equal(await page.inputValue("#key"), KEY, "remembered");
  assert.ok(await page.isChecked("#remember"));
  // Thirty days and a minute later the stored key has expired.
  await page.evaluate(() => {
    const saved = JSON.parse(localStorage.getItem("panlink.apiKey"));
    saved.expiresAt = Date.now() - 60_000;
    localStorage.setItem("panlink.apiKey", JSON.stringify(saved));
  });
  await page.reload();
  assert.equal(await page.inputValue("#key"), "", "forgotten after expiry");
  assert.equal(await page.evaluate(() => localStorage.getItem("panlink.apiKey")), null);
  // Without "remember", nothing is stored at all.
  await page.fill("#key", KEY);
  assert.equal(await page.evaluate(() => localStorage.getItem("panlink.apiKey")), null);
  assert.deepEqual(problems, []);
  await context.close();
});

test("try it: create a job, its SSE rows appear live, hurry a URL; the status panel shows numbers", async () => {
  const { context, page, problems } = await open("/");
  await page.fill("#key", KEY);
  await page.fill("#sample-urls", [
    "https://pan.quark.cn/s/okBrowser01",
    "https://pan.baidu.com/s/1goneBrowser02",
    "https://www.alipan.com/s/lockBrowser03 提取码: abcd",
    "https://cloud.189.cn/t/noneBrowser04",
  ].join("\n"));
  await page.click("#try-create");
  await page.waitForFunction(() => !document.getElementById("create-out").hidden);
  const created = JSON.parse(await page.textContent("#create-out"));
  assert.equal(created.total, 4);
  assert.match(created.job_id, /\S+/);
  await page.click("#try-urgent");
  await page.waitForFunction(() => !document.getElementById("urgent-out").hidden);
  const counts = JSON.parse(await page.textContent("#urgent-out"));
  assert.equal(typeof counts.promoted, "number", JSON.stringify(counts));
  await page.click("#try-stream");
  await page.waitForSelector('#events tr[data-event="done"]', { timeout: 30_000 });
  const rows = await page.$$eval("#events tbody tr", (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
  const results = rows.filter((r) => r[2] === "result");
  assert.equal(results.length, 4, JSON.stringify(rows));
  assert.deepEqual(results.map((r) => Number(r[1])), [1, 2, 3, 4], "event ids in order");
  const byProvider = Object.fromEntries(results.map((r) => [r[3], r[4]]));
  assert.match(byProvider.quark, /^valid all_checks_passed/);
  assert.match(byProvider.baidu, /^invalid /);
  assert.match(byProvider.aliyun, /^valid /, "the pass code after the URL was used");
  assert.match(byProvider.tianyi, /^invalid share_not_found/);
  assert.match(await page.textContent("#stream-status"), /任务完成/);
  // The status panel refreshes from /pool: the checks just made are counted.
  await page.waitForFunction(() => {
    const cells = document.querySelectorAll("#pool tfoot td");
    return cells.length > 5 && Number(cells[5].textContent) >= 4;
  }, null, { timeout: 10_000 });
  // One row per drive of /pool.
  const drives = Object.keys((await (await fetch(`${BASE}/pool`)).json()).providers).length;
  assert.ok(drives >= 12, `${drives} drives in /pool`);
  assert.equal(await page.locator("#pool tbody tr").count(), drives);
  await shot(page, "guide-try-it");
  assert.deepEqual(problems, []);
  await context.close();
});

test("/admin logs in, creates a key, disables it (the key then gets 403), adds points, deletes", async () => {
  const { context, page, problems } = await open("/admin", { permissions: ["clipboard-read", "clipboard-write"] });
  page.on("dialog", (dialog) => dialog.accept());
  await page.fill("#token", "wrong-token-0000000000");
  await page.click('#login-form button[type="submit"]');
  await page.waitForFunction(() => document.getElementById("login-error").textContent.length > 0);
  assert.equal(await page.textContent("#login-error"), "管理令牌错误");
  await page.fill("#token", ADMIN_TOKEN);
  await page.click('#login-form button[type="submit"]');
  await page.waitForSelector("#manage:not([hidden])");
  const name = `浏览器测试-${Date.now()}`;
  await page.fill("#new-name", name);
  await page.fill("#new-points", "30");
  // A key without the webhooks scope.
  await page.uncheck('#new-scopes input[value="webhooks"]');
  await page.click('#create-form button[type="submit"]');
  await page.waitForSelector("#secret-box:not([hidden])");
  const secret = (await page.textContent("#secret")).trim();
  assert.match(secret, /^sk_/);
  await page.click("#copy-secret");
  await page.waitForFunction(() => document.getElementById("copy-status").textContent === "已复制");
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  const row = page.locator("#keys tbody tr", { hasText: name });
  await row.waitFor();
  assert.match(await row.textContent(), /30/);
  const me = () => fetch(`${BASE}/api/v1/me`, { headers: { "X-API-Key": secret } });
  assert.equal((await me()).status, 200);
  assert.match(await row.textContent(), /links:write/);
  assert.doesNotMatch(await row.textContent(), /webhooks/);
  const hooks = await fetch(`${BASE}/api/v1/webhooks`, { headers: { "X-API-Key": secret } });
  assert.equal(hooks.status, 403);
  assert.equal((await hooks.json()).error, "scope_not_allowed");
  await row.locator('button[data-act="disable"]').click();
  await row.locator('button[data-act="enable"]').waitFor();
  assert.match(await row.textContent(), /已停用/);
  const refused = await me();
  assert.equal(refused.status, 403);
  assert.equal((await refused.json()).error, "key_disabled");
  await row.locator('button[data-act="enable"]').click();
  await row.locator('button[data-act="disable"]').waitFor();
  await row.locator('input[data-field="points"]').fill("12");
  await row.locator('button[data-act="points"]').click();
  await page.waitForFunction((n) => [...document.querySelectorAll("#keys tbody tr")]
    .some((tr) => tr.dataset.name === n && tr.cells[3].textContent === "42"), name);
  await row.locator('select[data-act="plan"]').selectOption("premium");
  await page.waitForFunction(async (s) => {
    const r = await fetch("/api/v1/me", { headers: { "X-API-Key": s } });
    return (await r.json()).data.plan === "premium";
  }, secret);
  // And the page has redrawn the table after the change (the `selected` attribute is only in a
  // redrawn row): a redraw still under way would clear the error or the input used below.
  await page.waitForFunction((n) => [...document.querySelectorAll("#keys tbody tr")]
    .some((tr) => tr.dataset.name === n && tr.querySelector("option[selected]")?.textContent === "premium"), name);
  // An error from the API is shown, not swallowed.
  await page.locator('#keys tbody tr', { hasText: name }).locator('input[data-field="points"]').fill("-1000");
  await page.locator('#keys tbody tr', { hasText: name }).locator('button[data-act="points"]').click();
  await page.waitForFunction(() => document.getElementById("error").textContent.includes("409"));
  await shot(page, "admin");
  await page.locator('#keys tbody tr', { hasText: name }).locator('button[data-act="delete"]').click();
  await page.locator("#keys tbody tr", { hasText: name }).waitFor({ state: "detached" });
  assert.equal((await me()).status, 401);
  // Login lives in sessionStorage: a new tab of another context is logged out.
  const other = await open("/admin");
  assert.ok(await other.page.isVisible("#login"));
  await other.context.close();
  assert.deepEqual(problems.filter((p) => !p.includes("401") && !p.includes("409")), []);
  await context.close();
});

test("/docs lists the operations and a try-it-out call with the API key succeeds", async () => {
  const { context, page, problems } = await open("/docs");
  await page.waitForSelector(".opblock-summary", { timeout: 30_000 });
  const operations = await page.locator(".opblock").count();
  const spec = await (await fetch(`${BASE}/openapi.json`)).json();
  const expected = Object.values(spec.paths).reduce((n, item) => n + Object.keys(item).length, 0);
  assert.equal(operations, expected, "every operation is listed");
  // The site's style sheet leaves Swagger UI's own elements alone (its version badge is a <pre>).
  assert.equal(await page.$eval("pre.version", (el) => getComputedStyle(el).borderTopWidth), "0px");
  await page.click("button.authorize");
  // The first scheme of the dialog is ApiKey (X-API-Key), the second the admin bearer token.
  const apiKey = page.locator(".modal-ux .auth-container").first();
  await apiKey.locator("input").fill(KEY);
  await apiKey.locator("button.authorize").click();
  await page.locator(".modal-ux button.btn-done").first().click();
  const me = page.locator("#operations-密钥-me");
  await me.locator(".opblock-summary").click();
  await me.locator("button.try-out__btn").click();
  await me.locator("button.execute").click();
  const live = me.locator(".live-responses-table tbody tr.response");
  await live.waitFor();
  assert.equal((await live.locator(".response-col_status").textContent()).trim(), "200");
  assert.match(await live.locator(".response-col_description").textContent(), /"points"/);
  await shot(page, "swagger-ui");
  assert.deepEqual(problems, []);
  await context.close();
});

test("in Swagger UI, every operation with a request body executes its example without a 400", async () => {
  const { context, page, problems } = await open("/docs");
  await page.waitForSelector(".opblock-summary", { timeout: 30_000 });
  await page.click("button.authorize");
  // The dialog's first scheme is ApiKey (X-API-Key), the second the admin bearer token.
  const schemes = page.locator(".modal-ux .auth-container");
  await schemes.nth(0).locator("input").fill(KEY);
  await schemes.nth(0).locator("button.authorize").click();
  await schemes.nth(1).locator("input").fill(ADMIN_TOKEN);
  await schemes.nth(1).locator("button.authorize").click();
  await page.locator(".modal-ux button.btn-done").first().click();
  const spec = await (await fetch(`${BASE}/openapi.json`)).json();
  const answers = [];
  for (const item of Object.values(spec.paths)) {
    for (const op of Object.values(item)) {
      if (!op.requestBody) continue;
      const block = page.locator(`#operations-${op.tags[0]}-${op.operationId}`);
      await block.locator(".opblock-summary").click();
      await block.locator("button.try-out__btn").click();
      await block.locator("button.execute").click();
      const status = block.locator(".live-responses-table tbody tr.response .response-col_status");
      await status.waitFor({ timeout: 30_000 });
      const code = (await status.textContent()).trim();
      answers.push(`${op.operationId} ${code}`);
      assert.ok(code !== "400" && code in op.responses, `${op.operationId} answered ${code}: ${await block.locator(".live-responses-table").textContent()}`);
      await block.locator(".opblock-summary").click();
    }
  }
  assert.equal(answers.length, 16, answers.join(", "));
  assert.deepEqual(problems.filter((p) => !/\b(401|403|404)\b/.test(p)), []);
  await context.close();
});

test("/redoc renders the API reference", async () => {
  const { context, page, problems } = await open("/redoc");
  await page.waitForSelector("h1", { timeout: 30_000 });
  await page.waitForFunction(() => document.body.innerText.includes("创建检测任务"));
  assert.match(await page.locator("h1").first().textContent(), /panlink API/);
  // Samples come from the document's examples, not ReDoc's placeholders.
  const text = await page.evaluate(() => document.body.innerText);
  assert.ok(!text.includes("property1") && !text.includes("2019-08-24"), "placeholder samples");
  await shot(page, "redoc");
  assert.deepEqual(problems, []);
  await context.close();
});

test("short-link pages share the site's look: password form (wrong, then right), 404", async () => {
  const made = await fetch(`${BASE}/api/v1/links`, {
    method: "POST",
    headers: { "X-API-Key": KEY, "Content-Type": "application/json" },
    body: JSON.stringify({ url: TARGET, access_type: "password", password: "芝麻开门" }),
  });
  assert.equal(made.status, 200, await made.clone().text());
  const { code } = (await made.json()).data;
  const { context, page, problems } = await open(`/${code}`);
  assert.equal(await page.textContent("h1"), "此链接需要密码");
  const headerColor = await page.$eval("header.site", (el) => getComputedStyle(el).backgroundColor);
  assert.equal(headerColor, "rgb(36, 41, 47)", "the site's style sheet applies");
  await shot(page, "link-password");
  await page.fill("#pw", "wrong");
  const [wrong] = await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  assert.equal(wrong.status(), 403);
  assert.match(await page.textContent('[role="alert"]'), /密码错误/);
  await page.fill("#pw", "芝麻开门");
  await Promise.all([page.waitForURL(TARGET), page.click('button[type="submit"]')]);
  assert.match(await page.textContent("body"), /"status":"ok"/);
  const missing = await page.goto(`${BASE}/noSuchCode42`);
  assert.equal(missing.status(), 404);
  assert.equal(await page.textContent("h1"), "短链接不存在");
  await shot(page, "link-not-found");
  const expected = (p) => p.includes("403") || p.includes("404") || p.includes(`left the server: ${TARGET}`);
  assert.deepEqual(problems.filter((p) => !expected(p)), []);
  await context.close();
});

test("in WeChat, a link with an open_in_browser rule shows the page with the link and a working copy button", async () => {
  const made = await fetch(`${BASE}/api/v1/links`, {
    method: "POST",
    headers: { "X-API-Key": KEY, "Content-Type": "application/json" },
    body: JSON.stringify({
      url: TARGET,
      title: "资源合集（夸克网盘）",
      rules: [{ if: { app: ["wechat", "qq"] }, action: "open_in_browser" }],
    }),
  });
  assert.equal(made.status, 200, await made.clone().text());
  const { code, full_short_url: shortUrl } = (await made.json()).data;
  // WeChat on Android (a real string: tests/fixtures/user_agents.tsv), on a phone-sized screen.
  const wechat = "Mozilla/5.0 (Linux; Android 7.1.1; MI 6 Build/NMF26X; wv) AppleWebKit/537.36 (KHTML, like Gecko) " +
    "Version/4.0 Chrome/57.0.2987.132 MQQBrowser/6.2 TBS/043807 Mobile Safari/537.36 MicroMessenger/6.6.1.1220(0x26060135) NetType/4G Language/zh_CN";
  const context = await browser.newContext({ userAgent: wechat, viewport: { width: 390, height: 760 }, isMobile: true });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (msg) => { if (msg.type() === "error") problems.push(`console: ${msg.text()}`); });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  const answer = await page.goto(`${BASE}/${code}`, { waitUntil: "load" });
  assert.equal(answer.status(), 200, "a page, not a redirect");
  assert.equal(await page.textContent("h1"), "请在浏览器中打开");
  assert.match(await page.textContent("main"), /资源合集（夸克网盘）/);
  assert.equal((await page.textContent("#short-link")).trim(), shortUrl);
  const hint = await page.$eval(".open-hint", (el) => { const r = el.getBoundingClientRect(); return { right: r.right, top: r.top }; });
  assert.ok(hint.right > 330 && hint.top < 40, `the arrow points at the menu in the top right: ${JSON.stringify(hint)}`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling on a phone: ${overflow}px`);
  await page.click("#copy-link");
  await page.waitForFunction(() => document.getElementById("copy-status").textContent !== "");
  assert.match(await page.textContent("#copy-status"), /已复制/);
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), shortUrl);
  await shot(page, "link-open-in-browser");
  assert.deepEqual(problems, []);
  await context.close();
  // The same link in a desktop browser redirects as usual.
  const plain = await fetch(`${BASE}/${code}`, { redirect: "manual" });
  assert.equal(plain.status, 302);
});

async function adminLogin(page) {
  await page.fill("#token", ADMIN_TOKEN);
  await page.click('#login-form button[type="submit"]');
  await page.waitForSelector("#manage:not([hidden])");
}

test("copy buttons work on a plain-http LAN address, where navigator.clipboard does not exist", async () => {
  const lan = BASE.replace("127.0.0.1", TARGET_HOST);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Records what each execCommand("copy") copied: the text selected at that moment.
  await context.addInitScript(() => {
    window.copied = [];
    const original = document.execCommand.bind(document);
    document.execCommand = (command, ...rest) => {
      if (command === "copy") {
        const active = document.activeElement;
        window.copied.push(active && "value" in active ? active.value.slice(active.selectionStart, active.selectionEnd) : String(window.getSelection()));
      }
      return original(command, ...rest);
    };
  });
  const page = await context.newPage();
  await page.goto(`${lan}/`, { waitUntil: "load" });
  assert.equal(await page.evaluate(() => window.isSecureContext), false);
  assert.equal(await page.evaluate(() => typeof navigator.clipboard), "undefined");
  await page.waitForFunction(() => !document.getElementById("copy-guide").disabled);
  await page.click("#copy-base");
  await page.waitForFunction(() => document.getElementById("copy-guide-status").textContent !== "");
  assert.equal(await page.textContent("#copy-guide-status"), "已复制");
  assert.deepEqual(await page.evaluate(() => window.copied), [lan]);

  await page.goto(`${lan}/admin`, { waitUntil: "load" });
  await adminLogin(page);
  await page.fill("#new-name", `局域网复制-${Date.now()}`);
  await page.click('#create-form button[type="submit"]');
  await page.waitForSelector("#secret-box:not([hidden])");
  const secret = (await page.textContent("#secret")).trim();
  await page.click("#copy-secret");
  await page.waitForFunction(() => document.getElementById("copy-status").textContent !== "");
  assert.equal(await page.textContent("#copy-status"), "已复制");
  assert.deepEqual(await page.evaluate(() => window.copied), [secret]);
  await context.close();
});

test("the guide fits a 390 px phone; admin buttons, headings and names stay readable", async () => {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await phone.newPage();
  await page.goto(`${BASE}/`, { waitUntil: "load" });
  await page.waitForFunction(() => document.getElementById("guide-length").textContent.includes("全文约"));
  await page.waitForFunction(() => document.querySelectorAll("#pool tbody tr").length > 0);
  const [pageWidth, windowWidth] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(pageWidth <= windowWidth, `the guide is ${pageWidth} px wide in a ${windowWidth} px window`);
  await shot(page, "guide-390");
  await page.goto(`${BASE}/admin`, { waitUntil: "load" });
  await adminLogin(page);
  const name = `手机上的长名称-${Date.now()}`;
  await page.fill("#new-name", name);
  await page.click('#create-form button[type="submit"]');
  const row = page.locator("#keys tbody tr", { hasText: name });
  await row.waitFor();
  await shot(page, "admin-390");
  // A name column at least five characters wide: no name stacks one character per line.
  const [nameWidth, fontSize] = await row.locator("td").first().evaluate((td) =>
    [td.clientWidth, parseFloat(getComputedStyle(td).fontSize)]);
  assert.ok(nameWidth >= 5 * fontSize, `the name column is ${nameWidth} px wide`);
  await phone.close();

  const desktop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const wide = await desktop.newPage();
  await wide.goto(`${BASE}/admin`, { waitUntil: "load" });
  await adminLogin(wide);
  await wide.locator("#keys tbody tr", { hasText: name }).waitFor();
  const wrapped = await wide.$$eval("#keys th, #keys button", (els) =>
    els.filter((el) => !(el.getBoundingClientRect().height < 2 * parseFloat(getComputedStyle(el).lineHeight)))
      .map((el) => el.textContent));
  assert.deepEqual(wrapped, [], "headings and buttons on one line");
  await shot(wide, "admin-1280");
  await desktop.close();
});

test("a path that is no page answers the site's 404 page to a browser", async () => {
  const { context, page } = await open("/");
  const missing = await page.goto(`${BASE}/no/such/page`);
  assert.equal(missing.status(), 404);
  assert.equal(await page.textContent("h1"), "页面不存在");
  await context.close();
});

test("粘贴检测: pasted text is checked live and its results download as CSV", async () => {
  const { context, page, problems } = await open("/");
  await page.fill("#key", KEY);
  await page.fill("#paste-text", [
    "资源一 https://pan.quark.cn/s/okPaste01 好用",
    "资源二 https://pan.baidu.com/s/1gonePaste02",
    "资源三 https://www.alipan.com/s/lockPaste03 提取码: abcd",
  ].join("\n"));
  await page.click("#paste-start");
  await page.waitForFunction(() => document.getElementById("paste-status").textContent.startsWith("检测完成"), null, { timeout: 30_000 });
  const states = await page.$$eval("#paste-results tbody tr", (trs) => trs.map((tr) => tr.dataset.state).sort());
  assert.deepEqual(states, ["invalid", "valid", "valid"]);
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#paste-download")]);
  assert.match(download.suggestedFilename(), /^panlink-\w+\.csv$/);
  const path = await download.path();
  const { readFileSync } = await import("node:fs");
  const csv = readFileSync(path, "utf8");
  assert.ok(csv.startsWith("\ufeffitem_id,url,provider,state,valid,reason"), csv.slice(0, 80));
  assert.equal(csv.trim().split("\r\n").length, 4, csv);
  await shot(page, "guide-paste-check");
  assert.deepEqual(problems, []);
  await context.close();
});
