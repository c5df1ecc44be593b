// Progressive enhancement for the requests pages. Every form works without this file:
// here, the comment form and the complete / reopen / scope forms are sent with fetch()
// (X-CSRF-Token from <meta name="csrf-token">, Accept: application/json) and the page
// is updated in place with the HTML fragment the server rendered.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  function fragment(html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  function showError(form, message) {
    var box = form.querySelector(".form-error") ||
      (form.parentElement && form.parentElement.querySelector(".form-error"));
    if (!box) { window.alert(message); return; }
    box.textContent = message;
    box.hidden = false;
  }

  function clearError(form) {
    var box = form.querySelector(".form-error");
    if (box) { box.textContent = ""; box.hidden = true; }
  }

  function send(form) {
    var body = new URLSearchParams(new FormData(form));
    form.classList.add("busy");
    return fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf }
    }).then(function (r) {
      return r.json().then(function (data) {
        form.classList.remove("busy");
        if (!r.ok) {
          var err = (data && data.error) || {};
          var fields = err.fields || {};
          var first = Object.keys(fields).map(function (k) { return fields[k]; })[0];
          throw new Error(first || err.message || "Something went wrong.");
        }
        return data;
      });
    }, function () {
      form.classList.remove("busy");
      throw new Error("The network failed; please try again.");
    });
  }

  function onComment(form) {
    send(form).then(function (data) {
      var list = document.getElementById("comments");
      var node = fragment(data.html);
      list.appendChild(node);
      var empty = document.querySelector(".no-comments");
      if (empty) { empty.remove(); }
      var count = document.querySelector(".comment-count");
      if (count) { count.textContent = "(" + data.comment_count + ")"; }
      form.reset();
      clearError(form);
      wire(node);
    }).catch(function (e) { showError(form, e.message); });
  }

  function onReplace(form) {
    send(form).then(function (data) {
      var old = document.getElementById(data.target);
      if (!old) { window.location.reload(); return; }
      var node = fragment(data.html);
      old.replaceWith(node);
      wire(node);
    }).catch(function (e) { showError(form, e.message); });
  }

  function wire(root) {
    var forms = root.querySelectorAll ? root.querySelectorAll("form[data-enhance]") : [];
    Array.prototype.forEach.call(forms, function (form) {
      if (form.dataset.wired) { return; }
      form.dataset.wired = "1";
      form.addEventListener("submit", function (ev) {
        if (!window.fetch) { return; }
        ev.preventDefault();
        // Publishing asks first (without JavaScript the server shows a confirm page).
        if (form.dataset.confirm) {
          if (!window.confirm(form.dataset.confirm)) { return; }
          var flag = form.querySelector('input[name="confirm"]') || document.createElement("input");
          flag.type = "hidden"; flag.name = "confirm"; flag.value = "1";
          form.appendChild(flag);
        }
        if (form.dataset.enhance === "comment") { onComment(form); } else { onReplace(form); }
      });
    });
  }

  // "Leaves this node in 1 min 40 s · undo": count down in place. The server's
  // number is the truth; a reload shows it again.
  function leavesIn(seconds) {
    var m = Math.floor(seconds / 60), s = seconds % 60;
    if (!m) { return s + " s"; }
    return s ? m + " min " + s + " s" : m + " min";
  }

  function tick() {
    var holds = document.querySelectorAll(".publish-hold[data-leaves-in]");
    Array.prototype.forEach.call(holds, function (p) {
      var left = parseInt(p.dataset.leavesIn, 10) - 1;
      p.dataset.leavesIn = String(Math.max(0, left));
      var out = p.querySelector(".countdown");
      if (out) { out.textContent = left > 0 ? leavesIn(left) : "a moment"; }
    });
  }

  // A device waiting for approval: ask every few seconds, move on when it is decided
  // (no meta refresh: a page that reloads itself under the reader is an accessibility
  // failure, and without JavaScript the page has a "check again" link).
  function pollLogin() {
    fetch("/login/pending", {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (b) {
        if (!b) { return; }
        if (b.status === "active") { window.location.href = "/?done=approved"; }
        else if (b.login && b.login.status !== "pending") { window.location.reload(); }
      })
      .catch(function () {});
  }
  if (document.querySelector("[data-login-poll]")) { window.setInterval(pollLogin, 5000); }

  wire(document);
  window.setInterval(tick, 1000);
  document.documentElement.dataset.enhanced = "1";
})();
