// The report page's one behaviour: copy the text version to the clipboard.
"use strict";

(function () {
  const btn = document.getElementById("copy");
  const out = document.getElementById("copy-status");
  if (!btn) {
    return;
  }
  btn.addEventListener("click", async () => {
    const text = document.getElementById("report-text").textContent;
    try {
      await navigator.clipboard.writeText(text);
      out.textContent = "Copied.";
    } catch (e) {
      // Without a secure context there is no clipboard API: select the
      // text so that the user can copy it.
      const pre = document.getElementById("report-text");
      pre.parentElement.open = true;
      const range = document.createRange();
      range.selectNodeContents(pre);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      out.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
    }
  });
})();
