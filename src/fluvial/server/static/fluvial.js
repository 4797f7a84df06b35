// fluvial's web UI: live updates from the server's event stream (no polling in the page).
// The stream sends HTML fragments (rendered and escaped by the server); each one
// replaces the element with the same id, or is added to its list.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]');
  document.body.addEventListener("htmx:configRequest", function (e) {
    if (csrf) { e.detail.headers["X-CSRF-Token"] = csrf.content; }
  });
  function fragment(html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }
  function upsert(listId, html, prepend) {
    var el = fragment(html);
    if (!el) { return; }
    var old = el.id && document.getElementById(el.id);
    if (old) { old.replaceWith(el); return; }
    var list = document.getElementById(listId);
    if (!list) { return; }
    var empty = list.querySelector(".empty");
    if (empty) { empty.remove(); }
    if (prepend) { list.prepend(el); } else { list.append(el); }
  }
  var url = document.body.getAttribute("data-stream");
  if (!url || !window.EventSource) { return; }
  var source = new EventSource(url);
  source.addEventListener("flow-run", function (e) { upsert("runs-body", e.data, true); });
  source.addEventListener("task-run", function (e) { upsert("task-runs-body", e.data, false); });
  source.addEventListener("run-state", function (e) { upsert("run-header", e.data, false); });
  source.addEventListener("log", function (e) {
    var box = document.getElementById("logs");
    if (!box) { return; }
    var atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.append(fragment(e.data));
    if (atEnd) { box.scrollTop = box.scrollHeight; }
  });
  document.body.setAttribute("data-stream-open", "1");
})();
