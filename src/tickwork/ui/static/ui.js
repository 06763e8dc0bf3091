// tickwork web UI: progressive enhancement only; every page works without it.
// While a run is pending or running, the invocation table polls its fragment and
// replaces itself, so statuses change without a reload. Served as a file: the pages'
// Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  var PERIOD_MS = 1500;

  function poll(container) {
    var url = container.getAttribute("data-poll");
    if (!url || container.getAttribute("data-live") !== "true") {
      return;
    }
    window.setTimeout(function () {
      // Not while the keyboard is on one of its buttons: the focus would be lost.
      if (container.contains(document.activeElement)) {
        poll(container);
        return;
      }
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("status " + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.querySelector("#" + container.id);
          if (!fresh) {
            return;
          }
          container.replaceWith(fresh);
          poll(fresh);
        })
        .catch(function () {
          window.setTimeout(function () { poll(container); }, PERIOD_MS * 4);
        });
    }, PERIOD_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
  });
})();
