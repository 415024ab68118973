// Live updates of a job page over Server-Sent Events: each new step is
// appended as text (never as markup), and the outcome replaces "running".
"use strict";
(function () {
  var log = document.getElementById("log");
  if (!log || !window.EventSource) { return; }
  var url = log.getAttribute("data-events");
  var seen = parseInt(log.getAttribute("data-count"), 10) || 0;
  var es = new EventSource(url + "?from=" + seen);
  es.addEventListener("step", function (e) {
    var li = document.createElement("li");
    li.textContent = e.data;
    log.appendChild(li);
  });
  es.addEventListener("result", function (e) {
    var r = document.getElementById("result");
    r.textContent = e.data;
    r.className = "state-" + e.data.split(":")[0];
    es.close();
  });
})();
