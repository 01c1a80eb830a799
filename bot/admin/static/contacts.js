/* Contacts and labels: select all, and a confirmation before a delete (its words come from
   the page, in the page's language). */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-select-all]").forEach(function (box) {
      var form = box.form;
      var name = box.getAttribute("data-select-all");
      var boxes = function () {
        return form.querySelectorAll('input[type=checkbox][name="' + name + '"]');
      };
      box.addEventListener("change", function () {
        boxes().forEach(function (b) { b.checked = box.checked; });
      });
      form.addEventListener("change", function (event) {
        if (event.target === box || event.target.name !== name) return;
        var all = Array.prototype.every.call(boxes(), function (b) { return b.checked; });
        box.checked = all && boxes().length > 0;
      });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  });
})();
