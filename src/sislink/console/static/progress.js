// Live progress for a job: polls the JSON at data-progress-url and, once the job has ended,
// reloads (or goes to data-done-url). Plain fetch, no framework.
(function () {
  "use strict";
  function watch(box) {
    var url = box.getAttribute("data-progress-url");
    var doneUrl = box.getAttribute("data-done-url");
    var bar = box.querySelector("progress");
    var words = box.querySelector(".progress-words");
    // The page's statuses in the reader's language ({"running": "en curso", ...}), if it gave them.
    var statusWords = JSON.parse(box.getAttribute("data-status-words") || "{}");
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (answer) { return answer.json(); })
        .then(function (job) {
          if (job.total) { bar.max = job.total; bar.value = job.done; }
          else { bar.removeAttribute("value"); }
          words.textContent = (statusWords[job.status] || job.status) + (job.message ? ": " + job.message : "");
          box.setAttribute("data-status", job.status);
          if (job.finished) {
            window.location.assign(doneUrl || window.location.href);
          } else {
            window.setTimeout(tick, 400);
          }
        })
        .catch(function () { window.setTimeout(tick, 1500); });
    }
    tick();
  }
  document.querySelectorAll("[data-progress-url]").forEach(watch);
})();
