// Live updates of the status page over Server-Sent Events: when the farm
// changes, the page is fetched again (rendered and escaped by the server)
// and its main part replaced.
"use strict";
(function () {
  var main = document.getElementById("status");
  if (!main || !window.EventSource || !window.DOMParser) { return; }
  var es = new EventSource(main.getAttribute("data-events"));
  es.addEventListener("changed", function () {
    fetch(location.pathname, { headers: { Accept: "text/html" } })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("status");
        if (fresh) { main.replaceChildren.apply(main, Array.from(fresh.childNodes)); }
      });
  });
})();
