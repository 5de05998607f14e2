// switchyard console: the live parts of a page update themselves. Every element with
// data-live="SECONDS" is fetched again (its data-src, else the page's URL, header X-Console-Fragment: 1, which
// answers only that part) and replaced, unless the tab is hidden or focus is inside it.
// Open <details> stay open. Without JavaScript every page still works; reload to update.
(function () {
  "use strict";
  function refresh(el) {
    if (document.hidden || el.contains(document.activeElement)) return;
    var open = Array.prototype.map.call(el.querySelectorAll("details[open][id]"), function (d) { return d.id; });
    fetch(el.getAttribute("data-src") || window.location.href, { headers: { "X-Console-Fragment": el.id }, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401 || r.redirected) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null || el.contains(document.activeElement)) return;
        el.innerHTML = html;
        open.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
        var stamp = document.getElementById("updated");
        if (stamp) stamp.textContent = "updated " + new Date().toLocaleTimeString();
      })
      .catch(function () {});
  }
  document.querySelectorAll("[data-live]").forEach(function (el) {
    var every = Math.max(2, parseInt(el.getAttribute("data-live"), 10) || 5) * 1000;
    setInterval(function () { refresh(el); }, every);
  });
})();
