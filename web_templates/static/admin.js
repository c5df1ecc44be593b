// Admin console: "Push now" / "Pull now" show the job's result in place. Without
// JavaScript the same forms post, wait for the result and come back with it as a flash.
(function () {
  "use strict";
  document.querySelectorAll("form[data-sync-now]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button");
      var out = form.parentNode.querySelector("output.sync-result");
      button.disabled = true;
      if (out) { out.textContent = "running…"; }
      fetch(form.action, {
        method: "POST", credentials: "same-origin",
        headers: {"Accept": "application/json", "X-CSRF-Token": form.csrf_token.value},
        body: new FormData(form)
      }).then(function (r) {
        return r.json().then(function (body) { return {status: r.status, body: body}; });
      }).then(function (res) {
        var b = res.body;
        var text = b.result ? b.job + ": " + b.result
          : b.queued ? b.queued + " is still running; reload later for its result"
          : (b.error && b.error.message) || "failed";
        if (out) { out.textContent = text; out.className = "sync-result " + (b.ok ? "ok" : "bad"); }
      }).catch(function () {
        if (out) { out.textContent = "could not reach the server"; }
      }).then(function () { button.disabled = false; });
    });
  });
})();
