// The template picker (templates/admin/_template_picker.html): shows the fields of the chosen
// template only (the others are disabled, so they are not sent), a text field where a
// parameter takes a fixed text, and, in a conversation, the wording filled with the contact's
// values as the customer will read it.
(function () {
  "use strict";
  var VARIABLE = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;

  document.querySelectorAll("[data-template-picker]").forEach(function (root) {
    var select = root.querySelector(".tp-select");
    if (!select) { return; }
    var preview = root.querySelector(".tp-preview");

    function valuesOf(fieldset) {
      var values = {};
      fieldset.querySelectorAll(".tp-param").forEach(function (param) {
        var source = param.querySelector(".tp-source").value;
        var textField = param.querySelector(".tp-text");
        textField.hidden = source !== "text";
        var value = source === "text" ? textField.querySelector("input").value : (root.dataset[source] || "");
        values[param.dataset.key] = value.trim();
      });
      return values;
    }

    function fill(source, values) {
      return source.replace(VARIABLE, function (whole, key) { return values[key] || whole; });
    }

    function update() {
      var chosen = null;
      root.querySelectorAll(".tp-template").forEach(function (fieldset) {
        var on = fieldset.dataset.template === select.value;
        fieldset.hidden = !on;
        fieldset.disabled = !on;
        if (on) { chosen = fieldset; }
      });
      if (!chosen) {
        if (preview) { preview.hidden = true; }
        return;
      }
      var values = valuesOf(chosen);
      if (!preview) { return; }
      var header = chosen.querySelector(".tp-header");
      preview.querySelector(".tp-preview-header").textContent = header ? fill(header.textContent, values) : "";
      preview.querySelector(".tp-preview-body").textContent = fill(chosen.querySelector(".tp-body").textContent, values);
      preview.hidden = false;
    }

    root.addEventListener("change", update);
    root.addEventListener("input", update);
    update();
  });
})();
