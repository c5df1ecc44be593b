// Streams copilot replies on /admin/copilot. Without this file the chat form posts and
// the page reloads with the answer. Here the form is sent with fetch() to
// /admin/copilot/stream (X-CSRF-Token from <meta name="csrf-token">), which answers
// server-sent events: start, delta {text}, tool {name, status, code?},
// proposal {id, tool, arguments}, then done {message_id, answer} or error {code, message}.
// The reply is rendered as it arrives. Browsers without streaming fetch keep the form post.
(function () {
  "use strict";
  var form = document.getElementById("copilot-form");
  if (!form || !form.dataset.stream || !window.fetch || !window.TextDecoder ||
      !window.ReadableStream || !window.URLSearchParams) { return; }
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var conversation = document.getElementById("conversation");
  var proposals = document.getElementById("proposals");
  var errorBox = document.getElementById("copilot-error");
  var textarea = form.querySelector("textarea[name=message]");
  var button = form.querySelector("button[type=submit]");
  var busy = false;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // Plain text with line breaks, as the server renders it (never as HTML).
  function setText(node, text) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
    text.split("\n").forEach(function (line, i) {
      if (i) { node.appendChild(document.createElement("br")); }
      node.appendChild(document.createTextNode(line));
    });
  }

  function postForm(action, className) {
    var f = el("form", className);
    f.method = "post";
    f.action = action;
    var token = el("input");
    token.type = "hidden";
    token.name = "csrf_token";
    token.value = csrf;
    f.appendChild(token);
    return f;
  }

  function showError(message, code) {
    errorBox.textContent = message + " ";
    if (code) { errorBox.appendChild(el("small", "", "(" + code + ")")); }
    errorBox.hidden = false;
  }

  function card(role) {
    var c = el("div", "card");
    c.dataset.role = role;
    var head = el("p");
    head.appendChild(el("strong", "", role === "user" ? "You" : "Copilot"));
    c.appendChild(head);
    var body = el("p", "reply-text");
    c.appendChild(body);
    conversation.appendChild(c);
    return { card: c, body: body };
  }

  function feedbackForm(messageId) {
    var f = postForm("/admin/copilot/feedback/" + messageId, "inline");
    f.appendChild(el("small", "muted rate-this", "Was this helpful? "));
    [["up", "Helpful", "\uD83D\uDC4D"], ["down", "Not helpful", "\uD83D\uDC4E"]].forEach(
      function (b) {
        var btn = el("button", "link", b[2]);
        btn.name = "value";
        btn.value = b[0];
        btn.setAttribute("aria-label", b[1]);
        f.appendChild(btn);
      });
    return f;
  }

  function addProposal(p) {
    var c = el("div", "card");
    c.dataset.proposal = p.id;
    var line = el("p");
    line.appendChild(el("code", "", p.tool));
    Object.keys(p.arguments || {}).forEach(function (k) {
      var v = p.arguments[k];
      if (v === "" || v === null || v === undefined) { return; }
      line.appendChild(document.createElement("br"));
      var small = el("small", "", k + ": ");
      small.appendChild(el("strong", "", String(v)));
      line.appendChild(small);
    });
    c.appendChild(line);
    var base = "/admin/copilot/proposals/" + encodeURIComponent(p.id) + "/";
    var confirm = postForm(base + "confirm", "inline");
    confirm.appendChild(el("button", "", "Confirm"));
    var dismiss = postForm(base + "dismiss", "inline");
    dismiss.appendChild(el("button", "link", "Dismiss"));
    c.appendChild(confirm);
    c.appendChild(dismiss);
    proposals.appendChild(c);
    proposals.hidden = false;
  }

  var TOOL_WORDS = { ran: "ran", proposed: "proposed (confirm below)",
                     refused: "refused", failed: "failed" };

  // One streamed turn: the admin's card, the reply card filled in event by event.
  function Turn(text) {
    this.user = card("user");
    setText(this.user.body, text);
    this.reply = card("assistant");
    this.reply.card.setAttribute("aria-busy", "true");
    this.reply.card.classList.add("streaming");
    this.text = "";
    this.tools = null;
    this.finished = false;
  }

  Turn.prototype.handle = function (event, data) {
    if (event === "delta") {
      this.text += data.text || "";
      setText(this.reply.body, this.text);
    } else if (event === "tool") {
      if (!this.tools) {
        this.tools = el("ul", "muted tool-calls");
        this.reply.card.insertBefore(this.tools, this.reply.body);
      }
      if (this.text) {  // text the model wrote before calling tools
        this.tools.appendChild(el("li", "", this.text));
        this.text = "";
        setText(this.reply.body, "");
      }
      this.tools.appendChild(el("li", "", (TOOL_WORDS[data.status] || data.status) + " " +
                                data.name + (data.code ? " (" + data.code + ")" : "")));
    } else if (event === "proposal") {
      addProposal(data);
    } else if (event === "done") {
      this.finished = true;
      this.reply.card.id = "m" + data.message_id;
      setText(this.reply.body, data.answer || this.text);
      this.reply.card.appendChild(feedbackForm(data.message_id));
      this.settle();
    } else if (event === "error") {
      this.fail(data.message || "The copilot failed.", data.code);
    }
  };

  Turn.prototype.settle = function () {
    this.reply.card.removeAttribute("aria-busy");
    this.reply.card.classList.remove("streaming");
  };

  // A failed turn is not stored: take its cards away and give the text back.
  Turn.prototype.fail = function (message, code) {
    if (this.finished) { return; }
    this.finished = true;
    this.settle();
    this.user.card.remove();
    this.reply.card.remove();
    showError(message, code);
  };

  function readEvents(body, onEvent) {
    var reader = body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function dispatch(block) {
      var event = "message";
      var data = "";
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) { event = line.slice(6).trim(); }
        else if (line.indexOf("data:") === 0) { data += line.slice(5).trim(); }
      });
      if (data) { onEvent(event, JSON.parse(data)); }
    }
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          buffer += decoder.decode();
          if (buffer.trim()) { dispatch(buffer); }
          return;
        }
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
        var end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
        return pump();
      });
    }
    return pump();
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (busy) { return; }
    var text = textarea.value.trim();
    if (!text) { showError("Write a message first.", "empty_message"); return; }
    busy = true;
    button.disabled = true;
    errorBox.hidden = true;
    var body = new URLSearchParams(new FormData(form));
    textarea.value = "";
    var turn = new Turn(text);
    function restore() {
      busy = false;
      button.disabled = false;
      if (turn.reply.card.parentNode === null && !textarea.value) { textarea.value = text; }
      textarea.focus();
    }
    fetch(form.dataset.stream, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "text/event-stream, application/json", "X-CSRF-Token": csrf }
    }).then(function (r) {
      var type = r.headers.get("Content-Type") || "";
      if (!r.ok || type.indexOf("text/event-stream") !== 0) {
        return r.json().then(function (data) {
          var err = (data && data.error) || {};
          turn.fail(err.message || "The server answered " + r.status + ".", err.code);
        }, function () {
          turn.fail("The server answered " + r.status + ".");
        });
      }
      return readEvents(r.body, function (event, data) { turn.handle(event, data); })
        .then(function () {
          turn.fail("The answer broke off. Reload the page to see whether it was saved.");
        });
    }).catch(function () {
      turn.fail("The network failed. Reload the page to see whether the answer was saved.");
    }).then(restore);
  });
  form.dataset.streaming = "1";
})();
