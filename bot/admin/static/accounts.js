// Team page: removing a user asks first, and the invitation link has a copy button. The
// question and the "copied" word are the page's data attributes, written (translated and
// escaped) by the page; this script has no words of its own.
"use strict";

document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
  if (!window.confirm(form.dataset.confirm)) event.preventDefault();
});

document.addEventListener("click", function (event) {
  var button = event.target;
  if (!(button instanceof HTMLButtonElement) || !button.dataset.copy) return;
  var field = document.getElementById(button.dataset.copy);
  if (!(field instanceof HTMLInputElement)) return;
  var done = function () { button.textContent = button.dataset.copied || button.textContent; };
  field.select();
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, function () {
      document.execCommand("copy");
      done();
    });
  } else {
    document.execCommand("copy");
    done();
  }
});
