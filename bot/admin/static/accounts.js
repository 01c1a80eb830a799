// Team page: removing a user asks first. The question is the form's data-confirm, written
// (translated and escaped) by the page; this script has no words of its own.
"use strict";

document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
  if (!window.confirm(form.dataset.confirm)) event.preventDefault();
});
