// The typing indicator: while a person types in the reply box, the page tells the server at
// most every 20 seconds, and the server sends WhatsApp's "typing…" to the customer (when the
// shop wants that; it holds to the 20 seconds itself too). Nothing is shown on this page.
"use strict";

(function () {
  var EVERY = 20000;
  var form = document.getElementById("reply-form");
  var box = document.getElementById("reply-text");
  if (!form || !box) return;
  var action = form.getAttribute("action") || "";
  var token = form.querySelector("input[name=csrf_token]");
  if (!/\/reply$/.test(action) || !token) return;
  var url = action.replace(/\/reply$/, "/typing");
  var last = 0;

  box.addEventListener("input", function () {
    var now = Date.now();
    if (!box.value.trim() || now - last < EVERY) return;
    last = now;
    fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": token.value }
    }).catch(function () { /* a missed indicator is no loss */ });
  });
  // The reply hides the indicator: the next words typed may show it again.
  form.addEventListener("submit", function () { last = 0; });
})();
