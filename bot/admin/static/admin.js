// Tresen admin: live inbox and replies without a reload (the settings pages have settings.js).
// Customer-supplied text only ever goes into textContent, never into markup.
"use strict";

(function () {
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  // The page's texts in its language (bot.admin.blueprint.SCRIPT_TEXTS), "%(name)s" filled in.
  function say(key, values) {
    var node = document.getElementById("texts");
    var all = node ? JSON.parse(node.textContent) : {};
    var text = all[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("%(" + name + ")s").join(String(values[name]));
    });
    return text;
  }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); throw new Error("logged out"); }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      });
  }

  function postForm(form, extra) {
    var data = new FormData(form);
    if (extra) Object.keys(extra).forEach(function (k) { data.set(k, extra[k]); });
    return fetch(form.getAttribute("action") || form.dataset.previewUrl, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { Accept: "application/json" }
    });
  }

  // --- one conversation ----------------------------------------------------------------

  var SAFE_LINK = /^https:\/\/www\.openstreetmap\.org\//;

  function messageNode(m) {
    var li = el("li", "msg " + (m.direction === "out" ? "out" : "in") + (m.auto ? " auto" : ""));
    li.dataset.id = String(m.id);
    if (m.note) li.appendChild(el("div", "note", m.note));
    if (m.quoted) li.appendChild(el("div", "quoted", say("inbox_quoted", { text: m.quoted })));
    if (m.text) {
      var body = el("div", "text", m.text);
      body.setAttribute("translate", "no");
      li.appendChild(body);
    }
    if (m.link && SAFE_LINK.test(m.link)) {
      var a = el("a", "maplink", m.link_label);
      a.href = m.link; a.target = "_blank"; a.rel = "noopener noreferrer";
      li.appendChild(a);
    }
    var meta = el("div", "meta");
    if (m.rule) meta.appendChild(el("span", "rule", m.rule));
    var time = el("time", null, m.time);
    time.setAttribute("datetime", m.at);
    meta.appendChild(time);
    if (m.tick) {
      var tick = el("span", "tick status-" + m.status, m.tick);
      tick.title = m.status_word; tick.setAttribute("aria-label", m.status_word);
      meta.appendChild(tick);
    }
    li.appendChild(meta);
    if (m.error) li.appendChild(el("div", "error", m.error));
    return li;
  }

  function setStatus(li, s) {
    var meta = li.querySelector(".meta");
    var tick = li.querySelector(".tick");
    if (!tick) { tick = el("span"); meta.appendChild(tick); }
    tick.className = "tick status-" + s.status;
    tick.textContent = s.tick || "";
    tick.title = s.status_word || ""; tick.setAttribute("aria-label", s.status_word || "");
    var error = li.querySelector(".error");
    if (s.error) {
      if (!error) { error = el("div", "error"); li.appendChild(error); }
      error.textContent = s.error;
    } else if (error) { error.remove(); }
  }

  function nearBottom(list) {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 120;
  }

  function conversation(list) {
    list.scrollTop = list.scrollHeight;
    var busy = false;
    function poll() {
      if (busy || document.hidden) return Promise.resolve();
      busy = true;
      var url = list.dataset.pollUrl + "?after=" + encodeURIComponent(list.dataset.after || "0");
      return getJSON(url).then(function (data) {
        var stick = nearBottom(list);
        if (data.messages.length) {
          var empty = list.querySelector(".empty");
          if (empty) empty.remove();
        }
        data.messages.forEach(function (m) {
          if (list.querySelector('[data-id="' + m.id + '"]')) return;
          list.appendChild(messageNode(m));
          list.dataset.after = String(Math.max(Number(list.dataset.after || 0), m.id));
        });
        Object.keys(data.statuses).forEach(function (id) {
          var li = list.querySelector('li[data-id="' + id + '"]');
          if (li) setStatus(li, data.statuses[id]);
        });
        if (stick) list.scrollTop = list.scrollHeight;
        if ((data.window_open ? "open" : "closed") !== list.dataset.window) {
          window.location.reload(); // the reply box changes between free text and templates
        }
      }).catch(function () {}).then(function () { busy = false; });
    }
    setInterval(poll, 3000);
    document.addEventListener("visibilitychange", poll);

    var errorBox = document.getElementById("send-error");
    document.querySelectorAll("form[data-ajax]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var button = form.querySelector("button[type=submit]");
        button.disabled = true;
        errorBox.hidden = true;
        postForm(form).then(function (r) {
          return r.json().catch(function () { return { ok: false, error: say("inbox_refused", { status: r.status }) }; });
        }).then(function (data) {
          if (!data.ok) { errorBox.textContent = data.error; errorBox.hidden = false; return; }
          form.querySelectorAll("textarea").forEach(function (t) { t.value = ""; });
          form.querySelectorAll("input[type=file]").forEach(function (f) { f.value = ""; });
          var quickFile = form.querySelector("input[name=quick_reply]");
          if (quickFile) { quickFile.value = ""; quickFile.dispatchEvent(new Event("change")); }
          return poll();
        }).catch(function () {
          errorBox.textContent = say("inbox_unreachable"); errorBox.hidden = false;
        }).then(function () { button.disabled = false; });
      });
    });
    attachments();
    var text = document.getElementById("reply-text");
    if (text) {
      text.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          text.form.requestSubmit();
        }
      });
    }
  }

  // The reply's file: one chosen here, or a quick reply's (quick_replies.js sets the hidden
  // field); its name shows under the box with a way to take it off again.
  function attachments() {
    var input = document.getElementById("reply-file");
    var quick = document.getElementById("reply-quick-file");
    var chip = document.getElementById("reply-attached");
    if (!input || !quick || !chip) return;
    var name = document.getElementById("reply-attached-name");
    function show() {
      var chosen = input.files.length ? input.files[0].name : (quick.value ? quick.dataset.name || "" : "");
      name.textContent = chosen;
      chip.hidden = !chosen;
    }
    input.addEventListener("change", function () { if (input.files.length) quick.value = ""; show(); });
    quick.addEventListener("change", show);
    document.getElementById("reply-attached-remove").addEventListener("click", function () {
      input.value = ""; quick.value = ""; show();
    });
  }

  // --- the conversation list -----------------------------------------------------------

  function conversationNode(c, current) {
    var li = el("li", String(c.id) === current ? "current" : "");
    var a = el("a"); a.href = c.url;
    var who = el("span", "who");
    var name = el("span", "name", c.name);
    name.setAttribute("translate", "no");
    who.appendChild(name);
    var time = el("time", null, c.time);
    if (c.at) time.setAttribute("datetime", c.at);
    who.appendChild(time);
    var line = el("span", "line");
    var snippet = el("span", "snippet", c.preview);
    snippet.setAttribute("translate", "no");
    line.appendChild(snippet);
    if (c.unread) {
      var badge = el("span", "unread", String(c.unread));
      badge.setAttribute("aria-label", say("inbox_unread"));
      line.appendChild(badge);
    }
    a.appendChild(who); a.appendChild(line);
    if (c.labels.length) {
      var labels = el("span", "labels");
      labels.setAttribute("translate", "no");
      c.labels.forEach(function (l) { labels.appendChild(el("span", "label", l)); });
      a.appendChild(labels);
    }
    li.appendChild(a);
    return li;
  }

  function conversations(list) {
    var last = null;
    setInterval(function () {
      if (document.hidden) return;
      getJSON(list.dataset.pollUrl).then(function (data) {
        var key = JSON.stringify(data.conversations);
        if (last === null) { last = key; return; }
        if (key === last) return;
        last = key;
        if (!data.conversations.length) return;
        var items = data.conversations.map(function (c) { return conversationNode(c, list.dataset.current); });
        list.replaceChildren.apply(list, items);
      }).catch(function () {});
    }, 5000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var messages = document.getElementById("messages");
    if (messages) conversation(messages);
    var list = document.getElementById("conversations");
    if (list) conversations(list);
  });
})();
