// Tresen settings pages: rows added and removed, live previews, reply texts with placeholder
// buttons and an advanced (Jinja) switch, the error summary, and a question before leaving
// unsaved changes. Words come from the page (#texts); texts from the server only ever go into
// textContent or a field's value.
"use strict";

(function () {
  var texts = {};

  function post(url, data) {
    return fetch(url, {
      method: "POST", body: data, credentials: "same-origin", headers: { Accept: "application/json" }
    }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  }

  // --- rows ------------------------------------------------------------------------------

  function renumber(row, index) {
    function swap(value) { return value.replace(/-\d+-/, "-" + index + "-").replace(/-\d+$/, "-" + index); }
    row.querySelectorAll("[name]").forEach(function (field) {
      field.name = field.name.replace(/-\d+-/, "-" + index + "-");
      if (field.tagName === "SELECT") field.selectedIndex = 0;
      else if (field.type === "checkbox") field.checked = false;
      else field.value = "";
    });
    row.querySelectorAll("[id]").forEach(function (node) { node.id = swap(node.id); });
    if (row.id) row.id = swap(row.id);
    row.querySelectorAll("label[for]").forEach(function (label) { label.htmlFor = swap(label.htmlFor); });
    row.querySelectorAll("[data-error-for]").forEach(function (node) {
      node.dataset.errorFor = swap(node.dataset.errorFor);
      node.textContent = ""; node.hidden = true;
    });
    row.querySelectorAll("[data-preview]").forEach(function (node) {
      node.dataset.preview = swap(node.dataset.preview);
      node.querySelectorAll(".p-when, .p-rule, .p-text").forEach(function (n) { n.textContent = ""; });
    });
    row.querySelectorAll("[data-text-editor]").forEach(function (editor) { showMode(editor, false); });
  }

  function nextIndex(rows) {
    var max = -1;
    rows.querySelectorAll("[name]").forEach(function (field) {
      var m = /-(\d+)-/.exec(field.name);
      if (m) max = Math.max(max, Number(m[1]));
    });
    return max + 1;
  }

  // --- reply texts -----------------------------------------------------------------------

  function showMode(editor, advanced) {
    editor.querySelectorAll("[data-plain]").forEach(function (n) { n.hidden = advanced; });
    editor.querySelectorAll("[data-code]").forEach(function (n) { n.hidden = !advanced; });
    editor.querySelector("[data-advanced]").checked = advanced;
  }

  function insert(button) {
    var editor = button.closest("[data-text-editor]");
    var area = editor.querySelector("textarea[data-plain]");
    var start = area.selectionStart, end = area.selectionEnd;
    // "Hallo" + [Name] reads "Hallo [Name]": a placeholder right after a word gets its space.
    var before = area.value.charAt(start - 1);
    var text = (before && !/[\s(\[„"']/.test(before) ? " " : "") + button.dataset.insert;
    area.setRangeText(text, start, end, "end");
    area.focus();
    area.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function switchMode(form, box) {
    var editor = box.closest("[data-text-editor]");
    var plain = editor.querySelector("textarea[data-plain]");
    var code = editor.querySelector("textarea[data-code]");
    var note = editor.querySelector("[data-not-plain]");
    var toCode = box.checked;
    var data = new FormData();
    data.set("csrf_token", form.querySelector("[name=csrf_token]").value);
    data.set("to", toCode ? "jinja" : "plain");
    data.set("text", toCode ? plain.value : code.value);
    post(form.dataset.textUrl, data).then(function (result) {
      if (toCode) {
        code.value = result.text; note.hidden = true; showMode(editor, true);
      } else if (result.text === null) {
        note.textContent = texts.settings_not_plain || ""; note.hidden = false; showMode(editor, true);
      } else {
        plain.value = result.text; note.hidden = true; showMode(editor, false);
      }
    }).catch(function () { showMode(editor, !toCode); });
  }

  // --- previews --------------------------------------------------------------------------

  function previews(form) {
    var timer = null;
    var sequence = 0;

    function showErrors(errors) {
      form.querySelectorAll("[data-error-for]").forEach(function (node) {
        var message = errors[node.dataset.errorFor];
        node.textContent = message || "";
        node.hidden = !message;
      });
    }

    function refresh() {
      var mine = ++sequence;
      var data = new FormData(form);
      // A chosen file goes only with the save, not with every preview.
      form.querySelectorAll("input[type=file]").forEach(function (f) { data.delete(f.name); });
      post(form.dataset.previewUrl, data).then(function (result) {
        if (mine !== sequence) return; // an answer to an older state of the form
        showErrors(result.errors || {});
        form.querySelectorAll(".preview").forEach(function (box) {
          var p = (result.previews || {})[box.dataset.preview];
          var part = function (cls) { return box.querySelector(cls) || { textContent: "" }; };
          box.classList.remove("stale");
          box.classList.toggle("none", !p || !p.text);
          if (p && p.title) part(".p-title").textContent = p.title;
          part(".p-when").textContent = p && p.when ? p.when : "";
          part(".p-rule").textContent = p ? (p.note || p.label || "") : (result.ok ? "" : texts.settings_fix_first || "");
          part(".p-text").textContent = p && p.text ? p.text : "";
        });
      }).catch(function () {});
    }

    function schedule() {
      clearTimeout(timer);
      form.querySelectorAll(".preview").forEach(function (p) { p.classList.add("stale"); });
      timer = setTimeout(refresh, 300);
    }
    if (form.querySelector(".preview")) {
      form.addEventListener("input", schedule);
      form.addEventListener("change", schedule);
      refresh();
    }
    return schedule;
  }

  // --- leaving with unsaved changes ------------------------------------------------------

  function guard(form, dirtyFromStart) {
    var dirty = dirtyFromStart;
    function touched(event) {
      if (event.target && event.target.hasAttribute && !event.target.hasAttribute("data-keep")) dirty = true;
    }
    form.addEventListener("input", touched);
    form.addEventListener("change", touched);
    form.addEventListener("submit", function () { dirty = false; });
    window.addEventListener("beforeunload", function (event) {
      if (!dirty) return;
      event.preventDefault();
      event.returnValue = "";
    });
    document.addEventListener("click", function (event) {
      var link = event.target instanceof Element ? event.target.closest("a[href]") : null;
      if (!link || !dirty || link.getAttribute("href").charAt(0) === "#") return;
      if (window.confirm(texts.unsaved || "")) { dirty = false; return; }
      event.preventDefault();
    });
    return function () { dirty = true; };
  }

  // --- the page --------------------------------------------------------------------------

  function focusField(key) {
    var target = document.getElementById("field-" + key);
    if (!target) return;
    target.scrollIntoView({ block: "center" });
    var field = target.matches("input, select, textarea") ? target
      : target.querySelector("input:not([type=hidden]):not([hidden]), select, textarea:not([hidden])");
    if (field) field.focus({ preventScroll: true });
  }

  function settings(form) {
    var schedule = previews(form);
    var summary = document.getElementById("error-summary");
    var markDirty = guard(form, !!summary);
    form.addEventListener("click", function (event) {
      var target = event.target;
      if (!(target instanceof HTMLElement)) return;
      if (target.dataset.insert) {
        insert(target);
      } else if (target.dataset.add) {
        var rows = document.getElementById(target.dataset.add);
        var items = rows.querySelectorAll(".row-item");
        var copy = items[items.length - 1].cloneNode(true);
        renumber(copy, nextIndex(rows));
        rows.appendChild(copy);
        var first = copy.querySelector("input:not([type=hidden]), textarea:not([hidden])");
        if (first) first.focus();
      } else if (target.hasAttribute("data-remove")) {
        var row = target.closest(".row-item");
        var all = row.parentElement.querySelectorAll(".row-item");
        if (all.length > 1) row.remove();
        else row.querySelectorAll("input:not([type=hidden]), textarea").forEach(function (f) { f.value = ""; });
        markDirty();
        schedule();
      }
    });
    form.addEventListener("change", function (event) {
      if (event.target instanceof HTMLInputElement && event.target.hasAttribute("data-advanced")) {
        switchMode(form, event.target);
      }
    });
    if (summary) {
      summary.querySelectorAll("a[data-field]").forEach(function (a) {
        a.addEventListener("click", function (event) {
          event.preventDefault();
          focusField(a.dataset.field);
        });
      });
      summary.scrollIntoView({ block: "start" });
      summary.focus({ preventScroll: true });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var node = document.getElementById("texts");
    if (node) texts = JSON.parse(node.textContent);
    var form = document.getElementById("settings-form");
    if (form) settings(form);
    var yaml = document.getElementById("yaml-form");
    if (yaml) guard(yaml, false);
  });
})();
