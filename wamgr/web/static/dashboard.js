// wamgr dashboard: live updates (Server-Sent Events), countdowns, confirmations, QR refresh.
// No framework and no build step: the pages work without it, this makes them live.
"use strict";

(function () {
  const page = document.body.dataset.page;
  const live = document.getElementById("live");
  const QR_REFRESH_MS = 2000;
  const RECONNECT_MS = 1000;
  const REFRESH_MS = 15000; // the fleet's lease expiries are read again this often
  let source = null;
  let lostAt = null;

  function setLive(state, text) {
    if (!live) return;
    live.dataset.state = state;
    live.textContent = text;
  }

  // --- countdowns: "in 4 s" to a next retry ---------------------------------------------
  function tick() {
    const now = Date.now();
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      const due = Date.parse(el.dataset.countdown);
      if (isNaN(due)) return;
      const s = Math.round((due - now) / 1000);
      if (s > 0) {
        el.textContent = s >= 120 ? "in " + Math.round(s / 60) + " min" : "in " + s + " s";
      } else {
        el.textContent = "due";
      }
    });
  }

  function countdownHtml(iso) {
    if (!iso) return "—";
    const t = document.createElement("time");
    t.dataset.countdown = iso;
    t.setAttribute("datetime", iso);
    return t;
  }

  // --- redraw pieces ---------------------------------------------------------------------
  function badge(state, symbol) {
    const span = document.createElement("span");
    span.className = "state state-" + state;
    span.dataset.field = "state";
    const sym = document.createElement("span");
    sym.setAttribute("aria-hidden", "true");
    sym.textContent = symbol;
    span.append(sym, " " + state);
    return span;
  }

  function setCell(row, field, content) {
    const cell = row.querySelector('[data-field="' + field + '"]');
    if (!cell) return;
    cell.replaceChildren(content);
  }

  function updateRow(row, t) {
    const stateCell = row.querySelector('[data-field="state"]');
    if (stateCell) stateCell.replaceWith(badge(t.state, t.symbol));
    row.dataset.state = t.state;
    setCell(row, "owner", t.owner || "—");
    setCell(row, "attempt", t.attempt ? String(t.attempt) : "");
    setCell(row, "next_retry", countdownHtml(t.next_retry_at));
    setCell(row, "last_error", t.last_error || "");
    setCell(row, "lease", t.lease_expires_text);
    row.classList.remove("flash-row");
    void row.offsetWidth; // restart the highlight
    row.classList.add("flash-row");
  }

  function updateCounts(counts) {
    let all = 0;
    document.querySelectorAll("[data-count]").forEach(function (el) {
      const s = el.dataset.count;
      if (s === "all") return;
      const n = counts[s] || 0;
      all += n;
      el.textContent = n.toLocaleString("en");
      const box = el.closest("[data-count-box]");
      if (box) box.classList.toggle("zero", n === 0);
    });
    const total = document.querySelector('[data-count="all"]');
    if (total) total.textContent = all.toLocaleString("en");
  }

  // Read the page again and put its main part in place (after a reload event, a lost
  // stream, or a change of the tenant this page shows).
  let refreshing = null;
  function refresh() {
    if (refreshing) return refreshing;
    refreshing = fetch(location.href, { headers: { accept: "text/html" }, cache: "no-store" })
      .then(function (r) {
        if (r.redirected && r.url.indexOf("/dashboard/login") >= 0) {
          location.href = r.url;
          return;
        }
        if (!r.ok) return;
        return r.text().then(function (html) {
          const doc = new DOMParser().parseFromString(html, "text/html");
          const fresh = doc.getElementById("content");
          const main = document.getElementById("content");
          if (!fresh || !main) return;
          const flash = fresh.querySelector(".flash");
          if (flash) flash.remove(); // a message was shown once already
          main.replaceWith(fresh);
          if (doc.body.dataset.state) document.body.dataset.state = doc.body.dataset.state;
          tick();
          watchQr();
        });
      })
      .catch(function () {})
      .finally(function () { refreshing = null; });
    return refreshing;
  }

  function onStatus(data) {
    if (page === "fleet") {
      data.tenants.forEach(function (t) {
        const row = document.querySelector('tr[data-tenant="' + CSS.escape(t.tenant_id) + '"]');
        if (row) updateRow(row, t);
      });
      updateCounts(data.counts);
      tick();
    } else if (page === "tenant") {
      const mine = document.body.dataset.tenant;
      if (data.tenants.some(function (t) { return t.tenant_id === mine; })) refresh();
    }
  }

  // --- the live stream, reconnected by itself ----------------------------------------------
  function connect() {
    if (!window.EventSource || !live) return;
    source = new EventSource("/dashboard/events");
    source.onopen = function () {
      setLive("open", "live");
      if (lostAt !== null) {
        lostAt = null;
        refresh(); // changes made while the stream was down
      }
    };
    source.addEventListener("status", function (e) { onStatus(JSON.parse(e.data)); });
    source.addEventListener("reload", function () { refresh(); });
    source.onerror = function () {
      if (lostAt === null) lostAt = Date.now();
      setLive("lost", "reconnecting…");
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        setTimeout(retry, RECONNECT_MS);
      }
    };
  }

  // The browser gave up on the stream (the server answered an error): ask whether the
  // session still holds, then open a new stream, or go and sign in again.
  function retry() {
    fetch("/dashboard/ping", { cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) {
          location.href = "/dashboard/login?next=" + encodeURIComponent(location.pathname + location.search);
        } else if (r.ok) {
          connect();
        } else {
          setTimeout(retry, RECONNECT_MS);
        }
      })
      .catch(function () { setTimeout(retry, RECONNECT_MS); });
  }

  // --- the QR while pairing: loaded again as it rotates -----------------------------------
  let qrTimer = null;
  function watchQr() {
    if (qrTimer !== null) return;
    qrTimer = setInterval(function () {
      const img = document.getElementById("qr");
      if (!img) return;
      img.src = img.dataset.src + "?t=" + Date.now();
    }, QR_REFRESH_MS);
  }

  // --- destructive actions ask first -----------------------------------------------------
  document.addEventListener("submit", function (e) {
    const form = e.target;
    const question = form.dataset ? form.dataset.confirm : null;
    if (!question) return;
    if (!window.confirm(question)) {
      e.preventDefault();
      return;
    }
    const field = form.querySelector('input[name="confirmed"]');
    if (field) field.value = "yes";
  });

  tick();
  setInterval(tick, 1000);
  if (page === "fleet" || page === "tenant") {
    connect();
    if (page === "fleet") {
      setInterval(function () {
        const typing = document.activeElement && document.activeElement.tagName === "INPUT";
        if (!document.hidden && !typing) refresh();
      }, REFRESH_MS);
    }
  } else if (live) {
    live.remove();
  }
  if (page === "tenant") watchQr();
})();
