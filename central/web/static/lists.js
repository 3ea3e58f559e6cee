// Varta operator console, wanted-list page: upload a registry export with a progress bar.
// Progressive: without this file the form posts as it is and the page shows the report.
// The bar shows the bytes sent; then, while the server reads and loads the file, the
// list's import progress is polled (large imports are staged and applied in key ranges)
// and shown until the report arrives. The phases seen are kept in data-phases (tests).
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) { return; }
  var status = document.getElementById("upload-status");
  var bar = document.getElementById("upload-bar");
  var pct = document.getElementById("upload-pct");
  var server = document.getElementById("server-progress");
  var report = document.getElementById("import-report");
  var button = form.querySelector("button[type=submit]");
  var POLL_MS = 250;

  function phase(name) {
    var seen = status.dataset.phases ? status.dataset.phases.split(" ") : [];
    if (seen.indexOf(name) < 0) { seen.push(name); status.dataset.phases = seen.join(" "); }
  }

  form.addEventListener("submit", function (ev) {
    if (!form.checkValidity()) { return; }
    ev.preventDefault();
    var timer = null, done = false;
    status.hidden = false;
    status.dataset.phases = "";
    bar.value = 0;
    pct.textContent = "";
    report.innerHTML = "";
    server.textContent = "";
    button.disabled = true;
    phase("upload");

    function poll() {
      timer = window.setTimeout(function () {
        var p = new XMLHttpRequest();
        p.open("GET", form.dataset.progress);
        p.setRequestHeader("hx-request", "true");
        p.onload = function () {
          if (done) { return; }
          if (p.status === 200 && p.responseText.trim()) {
            server.innerHTML = p.responseText;
            server.querySelectorAll(".import-run").forEach(function (run) { phase(run.dataset.state); });
          }
          poll();
        };
        p.onerror = function () { if (!done) { poll(); } };
        p.send();
      }, POLL_MS);
    }

    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("hx-request", "true");
    var token = form.querySelector("input[name=_csrf_token]");
    if (token) { xhr.setRequestHeader("x-csrftoken", token.value); }
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) { return; }
      bar.value = Math.round(100 * e.loaded / e.total);
      pct.textContent = bar.value + "%";
    };
    xhr.upload.onload = function () {
      bar.value = 100;
      pct.textContent = "100%";
      phase("sent");
      server.textContent = server.dataset.waiting || "";
      poll();
    };
    xhr.onload = function () {
      done = true;
      window.clearTimeout(timer);
      if (xhr.status === 401) { window.location.reload(); return; }
      server.textContent = "";
      report.innerHTML = xhr.responseText;
      button.disabled = false;
      phase(xhr.status === 200 ? "done" : "refused");
      var focus = report.querySelector("[role=alert], [role=status]");
      if (focus) { focus.setAttribute("tabindex", "-1"); focus.focus(); }
    };
    xhr.onerror = function () {
      done = true;
      window.clearTimeout(timer);
      button.disabled = false;
      phase("failed");
      report.textContent = status.dataset.failed || "";
    };
    xhr.send(new FormData(form));
  });
})();
