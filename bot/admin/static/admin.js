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

  // What live.js calls when its event stream tells of a change. While that stream is up
  // (window.tresenLive.up) the polls only look now and then, for what it does not tell.
  var refresher = window.tresenRefresh = window.tresenRefresh || {};
  function every(ms, pushedMs, fn) {
    var last = 0;
    setInterval(function () {
      if (window.tresenLive && window.tresenLive.up && Date.now() - last < pushedMs) return;
      last = Date.now();
      fn();
    }, ms);
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

  var SAFE_MAP = /^https:\/\/www\.openstreetmap\.org\//;
  // Our own media route only: whatever the JSON says, the page loads nothing from elsewhere.
  var SAFE_MEDIA = /^\/admin\/media\/\d+$/;

  function noTranslate(node) { node.setAttribute("translate", "no"); return node; }

  function placeNodes(li, place) {
    li.appendChild(el("div", "note", place.title));
    var box = el("div", "place");
    if (place.name) box.appendChild(noTranslate(el("div", "place-name", place.name)));
    if (place.address) box.appendChild(noTranslate(el("div", "place-address", place.address)));
    var coords = el("div", "place-coords");
    coords.appendChild(noTranslate(el("span", null, place.coords)));
    if (SAFE_MAP.test(place.url)) {
      coords.appendChild(document.createTextNode(" "));
      var a = el("a", "maplink", place.open);
      a.href = place.url; a.target = "_blank"; a.rel = "noopener noreferrer";
      coords.appendChild(a);
    }
    box.appendChild(coords);
    li.appendChild(box);
  }

  function cardNodes(li, cards) {
    li.appendChild(el("div", "note", cards.title));
    var list = el("ul", "cards");
    cards.items.forEach(function (c) {
      var item = el("li");
      if (c.name) item.appendChild(noTranslate(el("span", "card-name", c.name)));
      c.phones.forEach(function (p) { item.appendChild(noTranslate(el("span", "card-phone", p))); });
      list.appendChild(item);
    });
    li.appendChild(list);
  }

  var SVG = "http://www.w3.org/2000/svg";

  function fileIcon() {
    var icon = document.createElementNS(SVG, "svg");
    icon.setAttribute("class", "file-icon");
    icon.setAttribute("viewBox", "0 0 24 24");
    icon.setAttribute("width", "30"); icon.setAttribute("height", "30");
    icon.setAttribute("aria-hidden", "true");
    ["M6 2.5h8l5 5v14H6z", "M14 2.5v5h5"].forEach(function (d) {
      var path = document.createElementNS(SVG, "path");
      path.setAttribute("d", d);
      icon.appendChild(path);
    });
    return icon;
  }

  // The same elements as templates/admin/_message.html makes for a message's file.
  function mediaNode(media) {
    var url = media.url && SAFE_MEDIA.test(media.url) ? media.url : null;
    var shown = url ? media.shown : "none";
    var node;
    if (shown === "image") {
      node = el("a", "media-image");
      node.href = url; node.target = "_blank"; node.rel = "noopener"; node.title = media.open;
      var img = el("img");
      img.src = url; img.alt = media.label; img.loading = "lazy"; img.decoding = "async";
      node.appendChild(img);
    } else if (shown === "sticker") {
      node = el("img", "media-sticker");
      node.src = url; node.alt = media.label; node.loading = "lazy"; node.decoding = "async";
    } else if (shown === "audio" || shown === "video") {
      node = el(shown, "media-" + shown);
      node.controls = true; node.preload = "metadata"; node.src = url;
      if (shown === "video") node.setAttribute("playsinline", "");
      node.setAttribute("aria-label", media.label);
    } else if (shown === "file") {
      node = el("a", "media-file");
      node.href = url; node.setAttribute("download", media.name);
      node.appendChild(fileIcon());
      var about = el("span", "file-about");
      about.appendChild(noTranslate(el("span", "file-name", media.name)));
      var line = el("span", "file-line");
      if (media.size) line.appendChild(noTranslate(el("span", "file-size", media.size)));
      line.appendChild(el("span", "file-download", media.download));
      about.appendChild(line);
      node.appendChild(about);
    } else {
      node = el("div", "media-status " + media.state, media.status);
    }
    return node;
  }

  function messageNode(m) {
    var li = el("li", "msg " + (m.direction === "out" ? "out" : "in") + (m.auto ? " auto" : "") +
      (m.media ? " has-media" : ""));
    li.dataset.id = String(m.id);
    if (m.media && m.media.state === "pending") li.dataset.pending = "";
    if (m.place) placeNodes(li, m.place);
    else if (m.cards) cardNodes(li, m.cards);
    else if (m.note && !(m.media && m.media.hide_note)) li.appendChild(el("div", "note", m.note));
    if (m.media) li.appendChild(mediaNode(m.media));
    if (m.quoted) li.appendChild(el("div", "quoted", say("inbox_quoted", { text: m.quoted })));
    if (m.text) li.appendChild(noTranslate(el("div", "text", m.text)));
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

  // An internal note in the timeline: yellow, with its author; never sent.
  function noteNode(n) {
    var li = el("li", "team-note");
    li.dataset.noteId = String(n.id);
    li.appendChild(el("div", "note-head", say("inbox_note", { name: n.author })));
    li.appendChild(noTranslate(el("div", "text", n.text)));
    var meta = el("div", "meta");
    var time = el("time", null, n.time);
    time.setAttribute("datetime", n.at);
    meta.appendChild(time);
    li.appendChild(meta);
    return li;
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
      var url = list.dataset.pollUrl + "?after=" + encodeURIComponent(list.dataset.after || "0") +
        "&notes_after=" + encodeURIComponent(list.dataset.notesAfter || "0");
      // Files still being fetched: the answer brings those that came (or failed) since.
      var pending = Array.prototype.map.call(list.querySelectorAll("li[data-pending]"),
        function (li) { return li.dataset.id; });
      if (pending.length) url += "&pending=" + pending.slice(-100).join(",");
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
        (data.notes || []).forEach(function (n) {
          if (list.querySelector('[data-note-id="' + n.id + '"]')) return;
          var empty = list.querySelector(".empty");
          if (empty) empty.remove();
          list.appendChild(noteNode(n));
          list.dataset.notesAfter = String(Math.max(Number(list.dataset.notesAfter || 0), n.id));
        });
        (data.updated || []).forEach(function (m) {
          var li = list.querySelector('li[data-id="' + m.id + '"]');
          if (li) li.replaceWith(messageNode(m));
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
    every(3000, 15000, poll);
    refresher.conversation = poll;
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
    modes();
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

  // Reply or note: the same place under the conversation, two forms; the note one is yellow.
  function modes() {
    var buttons = document.querySelectorAll(".reply-modes .mode");
    var note = document.getElementById("note-form");
    var reply = document.getElementById("reply-mode");
    if (!buttons.length || !note || !reply) return;
    function choose(mode) {
      buttons.forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.mode === mode)); });
      note.hidden = mode !== "note";
      reply.hidden = mode === "note";
      var box = document.getElementById(mode === "note" ? "note-text" : "reply-text");
      if (box) box.focus();
    }
    buttons.forEach(function (b) {
      b.addEventListener("click", function () { choose(b.dataset.mode); });
    });
  }

  // The conversation's header: choosing a person or a state applies it at once.
  function teamBar() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      var apply = select.form.querySelector(".apply");
      if (apply) apply.hidden = true;
      select.addEventListener("change", function () { select.form.requestSubmit(); });
    });
  }

  // --- the conversation list -----------------------------------------------------------

  function conversationNode(c, current) {
    var li = el("li", String(c.id) === current ? "current" : "");
    var a = el("a"); a.href = c.url;
    var who = el("span", "who");
    if (c.pinned) {
      var pin = el("span", "pin", "📌");
      pin.title = say("inbox_pinned"); pin.setAttribute("aria-label", say("inbox_pinned"));
      who.appendChild(pin);
    }
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
    a.appendChild(who);
    if (c.match) {
      // The found text around the match: three text nodes, the middle one marked.
      var found = el("span", "line match");
      var text = noTranslate(el("span", "snippet"));
      text.appendChild(document.createTextNode(c.match.before));
      text.appendChild(el("mark", null, c.match.match));
      text.appendChild(document.createTextNode(c.match.after));
      found.appendChild(text);
      a.appendChild(found);
    }
    a.appendChild(line);
    var handling = el("span", "handling");
    if (c.state && c.state !== "open") handling.appendChild(el("span", "state state-" + c.state, c.state_word));
    if (c.assigned) {
      var assignee = el("span", "assignee");
      assignee.title = say("inbox_assigned", { name: c.assigned.name });
      assignee.appendChild(noTranslate(el("span", "initials", c.assigned.initials)));
      assignee.appendChild(document.createTextNode(" "));
      assignee.appendChild(noTranslate(el("span", "assignee-name", c.assigned.name)));
      handling.appendChild(assignee);
    }
    if (c.labels.length) {
      var labels = el("span", "labels");
      labels.setAttribute("translate", "no");
      c.labels.forEach(function (l) { labels.appendChild(el("span", "label", l)); });
      handling.appendChild(labels);
    }
    a.appendChild(handling);
    li.appendChild(a);
    li.className = [String(c.id) === current ? "current" : "", c.pinned ? "pinned" : "",
      "state-" + (c.state || "open")].join(" ").trim();
    li.dataset.id = String(c.id);
    return li;
  }

  // The unread count on each view's tab ("Mine 3 · Unassigned 5").
  function tabCounts(unread) {
    Object.keys(unread || {}).forEach(function (view) {
      var badge = document.querySelector('.view-tab[data-view="' + view + '"] .view-unread');
      if (!badge) return;
      badge.textContent = String(unread[view]);
      badge.classList.toggle("none", !unread[view]);
    });
  }

  function conversations(list) {
    var last = null;
    var busy = false;
    // pushed: live.js heard of a change, so even the first answer is news.
    function refresh(pushed) {
      if (busy || (document.hidden && !pushed)) return Promise.resolve();
      busy = true;
      return getJSON(list.dataset.pollUrl).then(function (data) {
        tabCounts(data.unread);
        var key = JSON.stringify(data.conversations);
        if (last === null && !pushed) { last = key; return; }
        if (key === last) return;
        last = key;
        if (!data.conversations.length) return;
        var items = data.conversations.map(function (c) { return conversationNode(c, list.dataset.current); });
        list.replaceChildren.apply(list, items);
      }).catch(function () {}).then(function () { busy = false; });
    }
    every(5000, 60000, refresh);
    refresher.inbox = refresh;
  }

  // A photo opens full size over the page; without the script its link opens it in a tab.
  function lightbox(list, dialog) {
    var big = dialog.querySelector("img");
    list.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest("a.media-image");
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      big.src = link.getAttribute("href");
      big.alt = link.querySelector("img") ? link.querySelector("img").alt : "";
      dialog.showModal();
    });
    dialog.addEventListener("click", function (event) {
      if (event.target === dialog || event.target === big || event.target.closest("button")) {
        dialog.close();
      }
    });
    dialog.addEventListener("close", function () { big.removeAttribute("src"); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var messages = document.getElementById("messages");
    if (messages) conversation(messages);
    var dialog = document.getElementById("lightbox");
    if (messages && dialog && dialog.showModal) lightbox(messages, dialog);
    var list = document.getElementById("conversations");
    if (list) conversations(list);
    teamBar();
  });
})();
