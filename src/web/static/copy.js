// Copying text to the clipboard from any origin, for the guide and admin pages.
// navigator.clipboard exists only in secure contexts (https, or http on localhost); a server
// reached over http on a LAN address gets the older way: the text selected in a hidden field
// and document.execCommand("copy"). When neither works, the caller says so and the user copies
// by hand.
"use strict";

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.top = "0";
  area.style.left = "0";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } finally {
    area.remove();
  }
  if (!copied) throw new Error("浏览器不允许此页面写入剪贴板（非 HTTPS 页面），请手动选中后复制");
}

// Selects the text of `element` so that the user can copy it by hand.
function selectText(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}
