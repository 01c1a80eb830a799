// Tresen admin: the push channel. One EventSource on /admin/events (bot/admin/live.py) tells
// the page when the inbox changed: the page refreshes at once (admin.js's polls slow down
// while the stream is up), the tab's title shows the unread conversations for me, and a new
// customer message for me can chime and show a notification. When the server refuses the
// stream (all taken) or it keeps failing, admin.js polls as before.
// Names and snippets come from customers: they only go into notifications, never into markup.
"use strict";

(function () {
  var live = window.tresenLive = { up: false };
  var FAILURES = 3;             // errors in a row before the page falls back to polling
  var AGAIN_MS = 60000;         // then the stream is tried again after this long
  var SOUND_KEY = "tresen.sound";
  var TOLD_KEY = "tresen.told"; // the newest message some tab of this browser already announced

  function say(key) {
    var node = document.getElementById("texts");
    var all = node ? JSON.parse(node.textContent) : {};
    return all[key] || "";
  }

  function stored(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }

  function store(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* private mode: this tab only */ }
  }

  // --- the tab's title ------------------------------------------------------------------

  function showUnread(count) {
    var plain = document.title.replace(/^\(\d+\) /, "");
    document.title = count > 0 ? "(" + count + ") " + plain : plain;
  }

  // --- sound ----------------------------------------------------------------------------

  var audio = null;

  function soundOn() { return stored(SOUND_KEY) === "on"; }

  function context() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    if (!audio) audio = new Context();
    if (audio.state === "suspended") audio.resume();
    return audio;
  }

  // Two soft notes going down, a quarter of a second: no file to load.
  function chime() {
    var ctx = context();
    if (!ctx) return;
    [[880, 0], [660, 0.13]].forEach(function (note) {
      var start = ctx.currentTime + note[1];
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = note[0];
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.12, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.22);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(start);
      osc.stop(start + 0.25);
    });
  }

  function soundButton(button) {
    function show() {
      var on = soundOn();
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.title = say(on ? "live_sound_on" : "live_sound_off");
    }
    button.addEventListener("click", function () {
      store(SOUND_KEY, soundOn() ? "off" : "on");
      show();
      if (soundOn()) chime(); // the click lets the page play sound, and says how it sounds
    });
    window.addEventListener("storage", function (event) { if (event.key === SOUND_KEY) show(); });
    // A browser lets a page play sound only after a tap or a key on it.
    function unlock() {
      if (soundOn()) context();
      document.removeEventListener("pointerdown", unlock);
      document.removeEventListener("keydown", unlock);
    }
    document.addEventListener("pointerdown", unlock);
    document.addEventListener("keydown", unlock);
    show();
  }

  // --- notifications --------------------------------------------------------------------

  function canNotify() { return "Notification" in window; }

  function notifyButton(button) {
    function show() { button.hidden = !canNotify() || Notification.permission !== "default"; }
    button.addEventListener("click", function () {
      // Asked only now, on the click: browsers refuse (and remember) an unasked prompt.
      var asked = Notification.requestPermission(show);
      if (asked && asked.then) asked.then(show);
    });
    show();
  }

  function notify(item) {
    var shown = new Notification(item.name, {
      body: item.snippet || say("live_new_message"),
      tag: "tresen-" + item.contact_id // a second message of the same customer replaces the first
    });
    shown.onclick = function () {
      window.focus();
      shown.close();
      if (/^\/admin\/inbox\/\d+$/.test(item.url)) window.location.href = item.url;
    };
  }

  // Several tabs hear the same news: the first to claim it tells. A mark is the event's id,
  // "<newest message>-<latest conversation change>"; both only grow.
  function parts(mark) {
    var found = /^(\d+)-(\d+)$/.exec(mark || "");
    return found ? [Number(found[1]), Number(found[2])] : [0, 0];
  }

  function firstToTell(mark) {
    var told = parts(stored(TOLD_KEY)), now = parts(mark);
    if (told[0] >= now[0] && told[1] >= now[1]) return false;
    store(TOLD_KEY, mark);
    return true;
  }

  function tell(data, mark) {
    var mine = (data["new"] || []).filter(function (item) { return item.for_me; });
    if (!mine.length || !firstToTell(mark)) return;
    if (soundOn()) chime();
    if (document.hidden && canNotify() && Notification.permission === "granted") mine.forEach(notify);
  }

  // --- the stream -----------------------------------------------------------------------

  var stale = false;   // a change came while the tab was hidden
  var unread = null;   // the count last heard

  // The open conversation first: its poll marks what it shows as read, which the list's
  // unread badges then show.
  function refresh() {
    var pages = window.tresenRefresh || {};
    var shown = pages.conversation ? pages.conversation() : null;
    Promise.resolve(shown).then(function () { if (pages.inbox) pages.inbox(true); });
    stale = document.hidden;
  }

  function connect(url) {
    var source = new EventSource(url);
    var failures = 0;
    source.addEventListener("open", function () { failures = 0; live.up = true; });
    source.addEventListener("unread", function (event) {
      var count = JSON.parse(event.data).unread_for_me;
      // Read meanwhile (another tab, this page's own poll): the list's badges changed too.
      if (unread !== null && count !== unread) refresh();
      showUnread(unread = count);
    });
    source.addEventListener("inbox", function (event) {
      var data = JSON.parse(event.data);
      showUnread(unread = data.unread_for_me);
      refresh();
      tell(data, event.lastEventId);
    });
    source.addEventListener("error", function () {
      // A stream that ended after its minute reconnects by itself (one error, then open);
      // a refusal (503) closes it, and a server that is away fails again and again.
      failures += 1;
      if (source.readyState !== EventSource.CLOSED && failures < FAILURES) return;
      source.close();
      live.up = false;
      window.setTimeout(function () { connect(url); }, AGAIN_MS);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("live");
    if (!box) return; // the login page
    box.hidden = false;
    soundButton(document.getElementById("live-sound"));
    notifyButton(document.getElementById("live-notify"));
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && stale) refresh();
    });
    if (window.EventSource) connect(box.dataset.eventsUrl);
  });
})();
