// The gradebook: edits not saved are not lost silently. A cell whose text differs from what
// the page was served with (or that the server refused, still unsaved) is marked as changed;
// leaving the page while any is asks first (the browser's own "Leave site?" question).
(function () {
  "use strict";
  var form = document.getElementById("grid-form");
  if (!form) { return; }
  var status = document.getElementById("unsaved");
  var submitting = false;
  function cells() { return form.querySelectorAll("table.grid input"); }
  function unsaved() {
    var n = 0;
    cells().forEach(function (input) {
      var changed = input.value !== input.defaultValue || input.getAttribute("aria-invalid") === "true";
      input.parentElement.classList.toggle("changed", input.value !== input.defaultValue);
      if (changed) { n += 1; }
    });
    return n;
  }
  function show() {
    var n = unsaved();
    if (status) {
      status.textContent = n ? n + (n === 1 ? " cell not saved yet." : " cells not saved yet.") : "";
    }
  }
  form.addEventListener("input", show);
  form.addEventListener("submit", function () { submitting = true; });
  window.addEventListener("beforeunload", function (event) {
    if (submitting || unsaved() === 0) { return; }
    event.preventDefault();
    event.returnValue = "";
  });
  show();
})();
