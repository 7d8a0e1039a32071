// outpost console: small progressive enhancements; every page works without this file.
"use strict";
document.addEventListener("submit", (ev) => {
  // Forms that change something irreversible ask once more.
  const form = ev.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    ev.preventDefault();
  }
});
// A file can be dropped anywhere on an upload form's box, not only on its file input.
document.querySelectorAll("form.dropzone").forEach((zone) => {
  const input = zone.querySelector("input[type=file]");
  if (!input) return;
  zone.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("dragging");
    if (ev.dataTransfer && ev.dataTransfer.files.length) {
      input.files = ev.dataTransfer.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }
  });
});
