// hydrant console: refreshes the element #live of the page every data-refresh seconds by
// fetching the page again and swapping the new #live in. No other behaviour.
(function () {
  "use strict";
  function schedule(every) {
    setTimeout(function () {
      var live = document.getElementById("live");
      if (!live) { return; }
      fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
        .then(function (text) {
          var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("live");
          if (fresh) { live.replaceWith(document.importNode(fresh, true)); }
        })
        .catch(function () { /* keep the page as it is; try again later */ })
        .then(function () { schedule(every); });
    }, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (!live) { return; }
    var secs = parseInt(live.getAttribute("data-refresh") || "5", 10);
    schedule(Math.max(1, secs) * 1000);
  });
})();
