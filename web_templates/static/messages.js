// Progressive enhancement for direct messages. Every form works without this file.
// Here: an EventSource on /messages/events keeps the nav's unread count current and, in an
// open conversation, appends each new message as it arrives (built with textContent: a
// message body is never parsed as HTML); the reply form is sent with fetch() and the
// message shows up through the stream (deduplicated by id).
(function () {
  "use strict";
  if (!window.EventSource) { return; }
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var list = document.getElementById("messages");
  var badge = document.getElementById("nav-unread");
  var conversation = list ? list.getAttribute("data-conversation") : "";
  var after = list ? (parseInt(list.getAttribute("data-after"), 10) || 0) : 0;
  var otherName = (document.title.split(" · ")[0] || "").trim();

  var inbox = document.getElementById("conversations") ||
    document.getElementById("no-conversations");
  var shownUnread = badge ? (parseInt(badge.firstChild.nodeValue, 10) || 0) : 0;

  function setUnread(count) {
    if (badge) {
      badge.firstChild.nodeValue = String(count);
      badge.hidden = !count;
    }
    // the inbox is not rebuilt in place: say that there is something new
    if (inbox && count > shownUnread && !document.getElementById("new-messages")) {
      var note = document.createElement("p");
      note.className = "flash";
      note.id = "new-messages";
      note.setAttribute("role", "status");
      var link = document.createElement("a");
      link.href = "/messages";
      link.textContent = "New messages: show them";
      note.appendChild(link);
      inbox.parentNode.insertBefore(note, inbox);
    }
    shownUnread = Math.min(shownUnread, count);
  }

  function append(m) {
    if (!list || document.getElementById("m-" + m.id)) { return; }
    var li = document.createElement("li");
    li.id = "m-" + m.id;
    li.className = "message " + (m.mine ? "mine" : "theirs");
    var who = document.createElement("strong");
    who.textContent = m.mine ? "You" : otherName;
    var when = document.createElement("small");
    when.className = "muted";
    when.textContent = " just now";
    var body = document.createElement("div");
    body.className = "message-body";
    body.textContent = m.body;
    li.appendChild(who);
    li.appendChild(when);
    li.appendChild(body);
    list.appendChild(li);
    var empty = document.getElementById("no-messages");
    if (empty) { empty.hidden = true; }
    if (m.seq > after) { after = m.seq; }
  }

  var source = null;
  function connect() {
    var url = "/messages/events";
    if (conversation) {
      url += "?conversation=" + encodeURIComponent(conversation) + "&after=" + after;
    }
    source = new EventSource(url);
    source.addEventListener("unread", function (e) { setUnread(JSON.parse(e.data).count); });
    source.addEventListener("message", function (e) { append(JSON.parse(e.data)); });
    source.addEventListener("closed", function () { source.close(); });
    source.addEventListener("error", function () {
      // the server ends a stream after a while; reconnect with the current cursor
      if (source.readyState === EventSource.CLOSED) { window.setTimeout(connect, 3000); }
    });
    document.documentElement.setAttribute("data-messages-live", "on");
  }
  connect();

  var form = document.getElementById("message-form");
  if (form && list) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var box = document.getElementById("message-body");
      var data = new URLSearchParams(new FormData(form));
      fetch(form.action, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrf }
      }).then(function (r) {
        return r.json().then(function (out) {
          var err = document.getElementById("message-error");
          if (!r.ok) {
            if (!err) {
              err = document.createElement("p");
              err.id = "message-error";
              err.className = "errors";
              err.setAttribute("role", "alert");
              form.parentNode.insertBefore(err, form);
            }
            err.textContent = (out.error && out.error.message) || "Not sent.";
            err.setAttribute("data-code", (out.error && out.error.code) || "");
            return;
          }
          if (err) { err.remove(); }
          box.value = "";
          append(out.message);
        });
      });
    });
  }
})();
