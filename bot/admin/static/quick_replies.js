// Quick replies: "/" in the reply box offers them, rendered for this customer by the server;
// on their page the placeholder buttons insert tokens and a delete asks first.
// Texts from the server only ever go into textContent or a textarea's value.
"use strict";

(function () {
  function say(key, values) {
    var node = document.getElementById("texts");
    var text = (node ? JSON.parse(node.textContent) : {})[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("%(" + name + ")s").join(String(values[name]));
    });
    return text;
  }

  function insertAt(box, text) {
    var start = box.selectionStart, end = box.selectionEnd;
    box.setRangeText(text, start, end, "end");
    box.dispatchEvent(new Event("input", { bubbles: true }));
    box.focus();
  }

  // The "/word" being typed: from a slash at the start or after a space up to the caret.
  function typedShortcut(box) {
    var before = box.value.slice(0, box.selectionStart);
    var match = /(^|\s)\/([\w-]*)$/u.exec(before);
    if (!match) return null;
    return { typed: match[2], start: before.length - match[2].length - 1, end: box.selectionStart };
  }

  function suggestions(box) {
    var list = document.getElementById(box.getAttribute("aria-controls"));
    var url = box.dataset.quickUrl;
    var items = [];
    var active = -1;
    var current = null;
    var sequence = 0;

    function close() {
      list.hidden = true;
      list.replaceChildren();
      box.setAttribute("aria-expanded", "false");
      box.removeAttribute("aria-activedescendant");
      items = []; active = -1; current = null;
    }

    function mark(index) {
      active = index;
      Array.prototype.forEach.call(list.children, function (li, i) {
        li.setAttribute("aria-selected", i === index ? "true" : "false");
        if (i === index) { box.setAttribute("aria-activedescendant", li.id); li.scrollIntoView({ block: "nearest" }); }
      });
    }

    function choose(index) {
      var item = items[index];
      if (!item || !current) return;
      var at = current;
      close();
      box.setRangeText(item.text, at.start, at.end, "end");
      // A quick reply's file goes with it (the reply box's hidden field names the reply).
      var field = document.getElementById("reply-quick-file");
      if (field) {
        field.value = item.file_name ? String(item.id) : "";
        field.dataset.name = item.file_name || "";
        field.dispatchEvent(new Event("change"));
      }
      box.dispatchEvent(new Event("input", { bubbles: true }));
      box.focus();
    }

    function show(found, typed) {
      items = found;
      var nodes = found.map(function (item, i) {
        var li = document.createElement("li");
        li.id = "quick-option-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("translate", "no");
        var name = document.createElement("span");
        name.className = "qs-shortcut"; name.textContent = "/" + item.shortcut;
        var text = document.createElement("span");
        text.className = "qs-text"; text.textContent = item.text;
        li.append(name, text);
        if (item.file_name) {
          var file = document.createElement("span");
          file.className = "qs-file"; file.textContent = item.file_name;
          li.append(file);
        }
        // pointerdown, not click: the textarea keeps its focus and caret.
        li.addEventListener("pointerdown", function (event) { event.preventDefault(); choose(i); });
        return li;
      });
      if (!nodes.length) {
        var none = document.createElement("li");
        none.className = "qs-none";
        none.textContent = say("quick_none", { typed: typed });
        nodes.push(none);
      }
      list.replaceChildren.apply(list, nodes);
      list.hidden = false;
      box.setAttribute("aria-expanded", "true");
      mark(found.length ? 0 : -1);
    }

    function update() {
      var found = typedShortcut(box);
      if (!found) { close(); return; }
      current = found;
      var mine = ++sequence;
      fetch(url + "?q=" + encodeURIComponent(found.typed), {
        headers: { Accept: "application/json" }, credentials: "same-origin"
      }).then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      }).then(function (data) {
        if (mine !== sequence || !current) return;
        show(data.replies, found.typed);
      }).catch(function () {
        if (mine !== sequence) return;
        items = [];
        var li = document.createElement("li");
        li.className = "qs-none"; li.textContent = say("quick_failed");
        list.replaceChildren(li); list.hidden = false;
      });
    }

    box.addEventListener("input", function (event) {
      if (event.isTrusted || event.inputType) update();
    });
    box.addEventListener("keyup", function (event) {
      if (event.key === "ArrowLeft" || event.key === "ArrowRight" || event.key === "Home" || event.key === "End") update();
    });
    box.addEventListener("keydown", function (event) {
      if (list.hidden) return;
      if (event.key === "ArrowDown" && items.length) {
        event.preventDefault(); mark((active + 1) % items.length);
      } else if (event.key === "ArrowUp" && items.length) {
        event.preventDefault(); mark((active - 1 + items.length) % items.length);
      } else if ((event.key === "Enter" || event.key === "Tab") && !event.ctrlKey && !event.metaKey && active >= 0) {
        event.preventDefault(); event.stopImmediatePropagation(); choose(active);
      } else if (event.key === "Escape") {
        event.preventDefault(); close();
      }
    });
    box.addEventListener("blur", function () { setTimeout(close, 150); });
    if (box.form) box.form.addEventListener("submit", close);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector("textarea[data-quick-url]");
    if (box) suggestions(box);

    document.querySelectorAll("button[data-insert]").forEach(function (button) {
      button.addEventListener("click", function () {
        var box = document.getElementById(button.dataset.target);
        // "Hallo" + [Name] reads "Hallo [Name]": a placeholder right after a word gets its space.
        var before = box.value.charAt(box.selectionStart - 1);
        insertAt(box, (before && !/[\s(\[„"']/.test(before) ? " " : "") + button.dataset.insert);
      });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  });
})();
