// The gradebook: edits not saved are not lost silently. A cell whose text differs from what
// the page was served with (or that the server refused, still unsaved) is marked as changed;
// leaving the page while any is asks first (the browser's own "Leave site?" question).
//
// Moving like a sheet: Up and Down move to the cell above or below; Left and Right move to the
// cell beside once the caret is at the start or end of the text (or the whole text is
// selected, as it is after a move), so they still move the caret inside a typed number; Enter
// moves down and Shift+Enter up (Save marks, or Ctrl+Enter in any cell, saves). A cell moved
// to has its text selected, so typing replaces it. The export state of the cell with the focus
// or the pointer is written under the grid.
(function () {
  "use strict";
  var form = document.getElementById("grid-form");
  if (!form) { return; }
  var status = document.getElementById("unsaved");
  var about = document.getElementById("cell-about");
  var frame = document.getElementById("grid-frame");
  var submitting = false;
  // The page's sentences in the reader's language ({"one": ..., "other": "{n} ...", ...}).
  var words = JSON.parse(form.getAttribute("data-words") || "{}");
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
      var said = n === 1 ? (words.one || "1 cell not saved yet.") : (words.other || "{n} cells not saved yet.");
      status.textContent = n ? said.replace("{n}", String(n)) : "";
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

  // The cell `rows` rows down and `cols` columns right of `input`'s, or null at an edge.
  function neighbour(input, rows, cols) {
    var cell = input.closest("td");
    var row = cell.parentElement;
    var index = Array.prototype.indexOf.call(row.cells, cell);
    if (rows) {
      row = rows < 0 ? row.previousElementSibling : row.nextElementSibling;
    } else {
      index += cols;
    }
    var target = row && row.cells[index];
    return target ? target.querySelector("input") : null;
  }
  function moveTo(input) {
    if (!input) { return false; }
    input.focus();
    input.select();
    unhide(input);  // focus() has scrolled it into view: at once, not a frame later
    return true;
  }
  form.addEventListener("keydown", function (event) {
    var input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.closest("table.grid")) { return; }
    // Ctrl+Enter (Cmd+Enter) saves from any cell: Enter moves down, and Save marks comes after
    // every cell in the tab order (1,400 of them at real size).
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit(document.getElementById("save-marks"));
      return;
    }
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    var start = input.selectionStart, end = input.selectionEnd, length = input.value.length;
    var all = start === 0 && end === length;
    var target = null;
    switch (event.key) {
      case "ArrowUp": target = neighbour(input, -1, 0); break;
      case "ArrowDown": target = neighbour(input, 1, 0); break;
      case "Enter": target = neighbour(input, event.shiftKey ? -1 : 1, 0); break;
      case "ArrowLeft":
        if (event.shiftKey || !(all || (start === 0 && end === 0))) { return; }
        target = neighbour(input, 0, -1);
        break;
      case "ArrowRight":
        if (event.shiftKey || !(all || (start === length && end === length))) { return; }
        target = neighbour(input, 0, 1);
        break;
      default: return;
    }
    // At an edge nothing moves; Enter never submits from a cell (Save marks does).
    if (moveTo(target) || event.key === "Enter" || event.key === "ArrowUp" || event.key === "ArrowDown") {
      event.preventDefault();
    }
  });

  // The words of the cell with the focus, or the pointer (its mark and export state), under
  // the grid next to Save.
  function tell(input) {
    if (!about || !input || !input.closest("table.grid")) { return; }
    var described = input.getAttribute("aria-describedby");
    var said = described ? document.getElementById(described) : null;
    about.textContent = input.getAttribute("aria-label") + ": " +
      (said ? said.textContent : (words.no_mark || "no mark yet."));
  }
  // A cell with the focus is not left under the Save bar fixed to the bottom of the window
  // (WCAG 2.4.11): the browser brings it into the window, not above the bar. Checked once the
  // browser has scrolled it into view (after the focus events) and the bar has its words.
  var bar = document.getElementById("grid-bar");
  function unhide(input) {
    if (!bar || document.activeElement !== input) { return; }
    var over = input.getBoundingClientRect().bottom - bar.getBoundingClientRect().top;
    if (over > 0) { window.scrollBy(0, over + 4); }
    over = input.getBoundingClientRect().bottom - bar.getBoundingClientRect().top;
    if (over > 0 && frame) { frame.scrollTop += over + 4; }  // the page could scroll no further
  }
  form.addEventListener("focusin", function (event) {
    var input = event.target;
    if (input instanceof HTMLInputElement && input.closest("table.grid")) {
      tell(input);
      window.requestAnimationFrame(function () { unhide(input); });
    }
  });
  form.addEventListener("mouseover", function (event) {
    var cell = event.target instanceof Element ? event.target.closest("table.grid td") : null;
    if (cell) { tell(cell.querySelector("input")); }
  });

  // A cell moved to (or tabbed to) is not hidden under the fixed header row or student column.
  function pad() {
    var head = form.querySelector("table.grid thead");
    var name = form.querySelector("table.grid tbody th");
    if (!frame || !head || !name) { return; }
    frame.style.scrollPaddingTop = head.offsetHeight + "px";
    frame.style.scrollPaddingLeft = name.offsetWidth + "px";
  }
  pad();
  window.addEventListener("resize", pad);
})();
