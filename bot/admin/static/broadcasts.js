// Broadcasts: a confirmation before cancelling, and the new-broadcast steps kept live (who gets
// it, a preview for the first of them, when it goes out and whether that is at night or while
// closed). Every word comes from the page (the texts script or the server's JSON); whatever a
// contact or the owner wrote only ever goes into textContent.
"use strict";

(function () {
  var textsNode = document.getElementById("texts");
  var texts = textsNode ? JSON.parse(textsNode.textContent) : {};

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var question = texts[form.dataset.confirm];
      if (question && !window.confirm(question)) event.preventDefault();
    });
  });

  var form = document.getElementById("broadcast-form");
  if (!form) return;

  function chosen(name) {
    var checked = form.querySelector("input[name=" + name + "]:checked");
    return checked ? checked.value : "";
  }

  // Only the fields of the chosen kind and time are shown.
  function showChoices() {
    var kind = chosen("kind"), when = chosen("when");
    form.querySelectorAll("[data-kind]").forEach(function (node) {
      node.hidden = node.dataset.kind !== kind;
    });
    form.querySelectorAll("[data-when]").forEach(function (node) {
      node.hidden = node.dataset.when !== when;
    });
  }

  function setText(id, value) {
    var node = document.getElementById(id);
    if (node) node.textContent = value || "";
    return node;
  }

  function list(node, lines) {
    node.textContent = "";
    (lines || []).forEach(function (line) {
      var item = document.createElement("li");
      item.textContent = line;
      node.appendChild(item);
    });
  }

  function show(data) {
    setText("recipients-text", data.recipients_text).dataset.count = data.recipients;
    setText("reachable-text", data.reachable_text).dataset.count = data.reachable;
    var preview = document.getElementById("preview");
    var p = data.preview;
    preview.hidden = !p;
    if (p) {
      setText("preview-title", p.title);
      document.getElementById("preview-template").hidden = !p.template;
      setText("preview-template-name", p.template ? p.template + " (" + p.language + ")" : "");
      setText("preview-text", p.text);
      list(document.getElementById("preview-params"), p.params);
      setText("preview-error", p.error).hidden = !p.error;
    }
    setText("when-text", data.when_text);
    var quiet = document.getElementById("quiet");
    quiet.hidden = !(data.warnings && data.warnings.length);
    var lines = document.querySelector("#quiet-lines ul") || document.createElement("ul");
    lines.className = "quiet-list";
    document.getElementById("quiet-lines").appendChild(lines);
    list(lines, data.warnings);
  }

  var timer = null, asked = 0;
  function check() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var number = ++asked;
      var data = new FormData(form);
      data.delete("confirmed");
      data.delete("file"); // the preview needs no file: it goes only with the form
      fetch(form.dataset.checkUrl, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { Accept: "application/json" }
      }).then(function (r) {
        if (r.status === 401) { window.location.reload(); throw new Error("logged out"); }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      }).then(function (result) {
        if (number === asked) show(result); // an older answer never overwrites a newer one
      }).catch(function () {});
    }, 250);
  }

  form.addEventListener("change", function () { showChoices(); check(); });
  form.addEventListener("input", check);
  showChoices();
  check();
})();
