// Varta operator console: the new-alert cue, keyboard shortcuts, row selection.
// Progressive: every action also works as a plain form without this file.
(function () {
  "use strict";
  var body = document.body;

  function boardState() {
    return document.querySelector("#board .board-state");
  }

  var lastMax = 0;
  var start = boardState();
  if (start) { lastMax = parseInt(start.dataset.maxId || "0", 10); }

  function bump(name) {
    body.dataset[name] = String(parseInt(body.dataset[name] || "0", 10) + 1);
  }

  // A new alert arrived: a visual cue always, the sound unless the user muted it.
  function cue(rows) {
    bump("cueCount");
    rows.forEach(function (row) { row.classList.add("fresh"); });
    body.classList.remove("cue");
    void body.offsetWidth;  // restart the animation
    body.classList.add("cue");
    if (body.dataset.muted === "true") { return; }
    var audio = document.getElementById("cue");
    if (!audio) { return; }
    audio.currentTime = 0;
    var played = audio.play();
    if (played && played.then) {
      played.then(function () { bump("cuePlayed"); }, function () { bump("cueBlocked"); });
    }
  }

  // A new face match waiting for confirmation: the same cue as a new alert.
  var faceState = document.querySelector("#face-queue .face-state");
  var lastFace = faceState ? parseInt(faceState.dataset.maxId || "0", 10) : 0;
  document.addEventListener("htmx:afterSwap", function (ev) {
    if (!ev.target || ev.target.id !== "face-queue") { return; }
    var state = ev.target.querySelector(".face-state");
    var max = state ? parseInt(state.dataset.maxId || "0", 10) : 0;
    if (max > lastFace) {
      var fresh = [];
      ev.target.querySelectorAll("tr[data-candidate-id]").forEach(function (row) {
        if (parseInt(row.dataset.seq || "0", 10) > lastFace) { fresh.push(row); }
      });
      if (fresh.length) { cue(fresh); }
    }
    lastFace = Math.max(lastFace, max);
  });

  document.addEventListener("htmx:afterSwap", function (ev) {
    if (!ev.target || ev.target.id !== "board") { return; }
    var state = boardState();
    if (!state) { return; }
    var max = parseInt(state.dataset.maxId || "0", 10);
    if (max > lastMax) {
      var fresh = [];
      document.querySelectorAll("#board tr[data-alert-id]").forEach(function (row) {
        if (parseInt(row.dataset.alertId, 10) > lastMax && row.dataset.state === "new") {
          fresh.push(row);
        }
      });
      if (fresh.length) { cue(fresh); }
    }
    lastMax = Math.max(lastMax, max);
    reselect();
  });

  // Board rows: j/k (or arrows) select, Enter opens, a acknowledges.
  var selected = null;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#board tr[data-alert-id]")); }
  function select(row) {
    rows().forEach(function (r) { r.classList.remove("selected"); r.removeAttribute("aria-selected"); });
    if (!row) { selected = null; return; }
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    row.focus();
    selected = row.dataset.alertId;
  }
  function reselect() {
    if (!selected) { return; }
    var row = document.getElementById("alert-" + selected);
    if (row) { row.classList.add("selected"); row.setAttribute("aria-selected", "true"); }
  }
  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var i = all.findIndex(function (r) { return r.dataset.alertId === selected; });
    i = i < 0 ? 0 : Math.min(all.length - 1, Math.max(0, i + step));
    select(all[i]);
  }
  function openDetails(id, focus) {
    var d = document.getElementById(id);
    if (!d) { return false; }
    d.open = true;
    var f = d.querySelector(focus || "input, select, textarea, button");
    if (f) { f.focus(); }
    return true;
  }
  function click(selector) {
    var el = document.querySelector(selector);
    if (el) { el.click(); return true; }
    return false;
  }

  // The keyboard help: "?" (or the footer's button) opens it, "?" or Esc closes it.
  var help = document.getElementById("keys-help");
  function toggleHelp() {
    if (!help || !help.showModal) { return false; }
    if (help.open) { help.close(); } else { help.showModal(); }
    return true;
  }
  var helpButton = document.getElementById("keys-open");
  if (helpButton) { helpButton.addEventListener("click", toggleHelp); }
  if (help) {
    help.addEventListener("close", function () { if (helpButton) { helpButton.focus(); } });
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var tag = (ev.target && ev.target.tagName) || "";
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") {
      if (ev.key === "Escape") { ev.target.blur(); }
      return;
    }
    if (ev.key === "Enter" && (tag === "BUTTON" || tag === "A" || tag === "SUMMARY")) { return; }
    if (ev.key === "?") { if (toggleHelp()) { ev.preventDefault(); } return; }
    if (help && help.open) { return; }  // no action behind the open help
    var page = body.dataset.page, done = false;
    if (ev.key === "m") { done = click("#mute-form button"); }
    else if (page === "board") {
      if (ev.key === "j" || ev.key === "ArrowDown") { move(1); done = true; }
      else if (ev.key === "k" || ev.key === "ArrowUp") { move(-1); done = true; }
      else if (ev.key === "Enter" && selected) { window.location.href = "/console/alerts/" + selected; done = true; }
      else if (ev.key === "a" && selected) { done = click("#alert-" + selected + " button.ack"); }
    } else if (page === "face") {
      if (ev.key === "c") { done = click("#confirm:not([disabled])"); }
      else if (ev.key === "x") { done = openDetails("act-reject", "#reject-reason"); }
      else if (ev.key === "b") { window.location.href = "/console/"; done = true; }
    } else if (page === "alert") {
      if (ev.key === "a") { done = click("#act-acknowledged"); }
      else if (ev.key === "d") { done = openDetails("act-dispatched", "#crew"); }
      else if (ev.key === "r") { done = openDetails("act-resolved", "button[type=submit]"); }
      else if (ev.key === "x") { done = openDetails("act-rejected", "#reject-reason"); }
      else if (ev.key === "b") { window.location.href = "/console/"; done = true; }
    }
    if (done) { ev.preventDefault(); }
  });

  document.addEventListener("click", function (ev) {
    var row = ev.target.closest && ev.target.closest("#board tr[data-alert-id]");
    if (row && !ev.target.closest("a, button")) { select(row); }
  });

  body.dataset.ready = "true";  // shortcuts are live (tests wait for this)

  // The session ended while the board was open (the stream says "ended", or a request is
  // refused): reload, and the server sends the browser to the login page.
  document.addEventListener("htmx:sseClose", function (ev) {
    if (ev.detail && ev.detail.type === "message") { window.location.reload(); }
  });
  document.addEventListener("htmx:responseError", function (ev) {
    if (ev.detail && ev.detail.xhr && ev.detail.xhr.status === 401) { window.location.reload(); }
  });
})();
