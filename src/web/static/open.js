// The "open in your browser" page: its button copies the short link (copyText is in copy.js).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("copy-link");
  const link = document.getElementById("short-link");
  const status = document.getElementById("copy-status");
  if (!button || !link || !status) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await copyText(link.textContent);
      status.textContent = "已复制，请粘贴到浏览器地址栏中打开";
    } catch (err) {
      selectText(link);
      status.textContent = err.message || "复制失败，请长按链接手动复制";
    }
  });
});
