// The "new template" page: an example field appears for every variable written in the heading
// and the text (the server checks again and is the truth), the name gets a suggestion Meta
// takes, and the heading and button rows show only the fields their kind needs.
// Texts from the server only ever go into textContent or an input's value.
"use strict";

(function () {
  var VARIABLE = /\{\{\s*([a-z][a-z0-9_]*)\s*\}\}/g;

  function say(key, values) {
    var node = document.getElementById("texts");
    var text = (node ? JSON.parse(node.textContent) : {})[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("%(" + name + ")s").join(String(values[name]));
    });
    return text;
  }

  // The same rule as bot.message_templates.submission.suggest_name.
  function suggestName(text) {
    var s = text.trim().toLowerCase()
      .replace(/ä/g, "ae").replace(/ö/g, "oe").replace(/ü/g, "ue").replace(/ß/g, "ss");
    s = s.normalize("NFKD").replace(/[\u0300-\u036f]/g, "");
    return s.replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 512).replace(/_+$/, "");
  }

  function variablesOf(text) {
    var found = [];
    var match;
    VARIABLE.lastIndex = 0;
    while ((match = VARIABLE.exec(text)) !== null) {
      if (found.indexOf(match[1]) < 0) found.push(match[1]);
    }
    return found;
  }

  function init() {
    var form = document.getElementById("template-form");
    if (!form) return;
    var name = document.getElementById("template-name");
    var hint = document.getElementById("name-suggestion");
    var header = document.getElementById("template-header");
    var headerText = document.getElementById("template-header-text");
    var body = document.getElementById("template-body");
    var examples = document.getElementById("examples");

    function showSuggestion() {
      var wanted = suggestName(name.value);
      hint.textContent = "";
      hint.hidden = !wanted || wanted === name.value;
      if (hint.hidden) return;
      hint.appendChild(document.createTextNode(say("template_name_suggestion", { name: wanted }) + " "));
      var use = document.createElement("button");
      use.type = "button";
      use.className = "link";
      use.textContent = say("template_use_name");
      use.addEventListener("click", function () {
        name.value = wanted;
        showSuggestion();
        name.focus();
      });
      hint.appendChild(use);
    }

    function syncExamples() {
      var keys = header.value === "text" ? variablesOf(headerText.value) : [];
      variablesOf(body.value).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); });
      var existing = {};
      examples.querySelectorAll("label[data-example]").forEach(function (label) {
        existing[label.dataset.example] = label;
      });
      var empty = document.getElementById("no-variables");
      keys.forEach(function (key) {
        if (existing[key]) { examples.appendChild(existing[key]); delete existing[key]; return; }
        var label = document.createElement("label");
        label.dataset.example = key;
        var span = document.createElement("span");
        span.textContent = say("template_example", { variable: "{{" + key + "}}" });
        var input = document.createElement("input");
        input.name = "example-" + key;
        input.maxLength = 200;
        input.setAttribute("translate", "no");
        label.appendChild(span);
        label.appendChild(input);
        examples.appendChild(label);
      });
      // Fields of variables no longer written go, with their error lines.
      Object.keys(existing).forEach(function (key) {
        var gone = existing[key];
        var next = gone.nextElementSibling;
        if (next && next.classList.contains("field-error")) next.remove();
        gone.remove();
      });
      if (!keys.length && !empty) {
        empty = document.createElement("p");
        empty.className = "hint";
        empty.id = "no-variables";
        empty.textContent = say("template_no_variables");
        examples.appendChild(empty);
      } else if (keys.length && empty) {
        empty.remove();
      }
    }

    function showHeader() {
      form.querySelectorAll("[data-header]").forEach(function (part) {
        var kind = part.dataset.header;
        part.hidden = !(kind === header.value || (kind === "media" && ["image", "video", "document"].indexOf(header.value) >= 0));
      });
    }

    function showRow(row) {
      var kind = row.querySelector("[data-button-kind]").value;
      row.querySelectorAll("[data-for-kind]").forEach(function (field) {
        field.hidden = !kind || field.dataset.forKind.split(" ").indexOf(kind) < 0;
      });
    }

    var rows = Array.prototype.slice.call(form.querySelectorAll(".button-row"));
    var add = document.getElementById("add-button");
    function showAdd() {
      add.hidden = !rows.some(function (row) { return row.hidden; });
    }
    rows.forEach(function (row) {
      showRow(row);
      row.querySelector("[data-button-kind]").addEventListener("change", function () { showRow(row); });
    });
    add.addEventListener("click", function () {
      var next = rows.filter(function (row) { return row.hidden; })[0];
      if (next) { next.hidden = false; next.querySelector("select").focus(); }
      showAdd();
    });
    showAdd();

    name.addEventListener("input", showSuggestion);
    body.addEventListener("input", syncExamples);
    headerText.addEventListener("input", syncExamples);
    header.addEventListener("change", function () { showHeader(); syncExamples(); });
    showHeader();
    syncExamples();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
