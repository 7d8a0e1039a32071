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
