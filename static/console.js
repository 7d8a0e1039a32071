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

// The consent pop-up's preview follows the editor as the administrator types (the
// server renders the same preview after saving).
for (const form of document.querySelectorAll("form[data-consent-editor]")) {
  form.addEventListener("input", (ev) => {
    const name = ev.target.getAttribute("name");
    if (!name) return;
    for (const out of document.querySelectorAll("[data-preview]")) {
      if (out.getAttribute("data-preview") === name) out.textContent = ev.target.value;
    }
  });
}

// Tab lists: the arrow keys, Home and End move between tabs (Enter opens one).
for (const nav of document.querySelectorAll("nav.tabs")) {
  const links = [...nav.querySelectorAll("a")];
  nav.addEventListener("keydown", (ev) => {
    const at = links.indexOf(document.activeElement);
    if (at < 0) return;
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: links.length - 1 }[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    links[(to + links.length) % links.length].focus();
  });
}
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
