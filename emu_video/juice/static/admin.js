"use strict";
(function () {
  const parts = location.pathname.split("/").filter(Boolean);
  const token = parts.length >= 2 ? parts[1] : "";
  const $ = (id) => document.getElementById(id);

  function ago(ts, now) {
    if (!ts) return "never";
    const s = Math.max(0, Math.round(now - ts));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }

  async function refresh() {
    try {
      const res = await fetch("/api/admin/" + encodeURIComponent(token) + "/progress", { cache: "no-store" });
      const data = await res.json();
      if (!res.ok) {
        $("admin-error").textContent = data.error || ("The server answered " + res.status);
        return;
      }
      $("admin-error").textContent = "";
      $("study-name").textContent = data.study;
      $("systems").textContent = `A = ${data.systems.a}, B = ${data.systems.b}; ${data.pairs} pairs, ${data.raters_per_pair} raters each`;
      const pct = data.votes_needed ? (100 * data.votes / data.votes_needed) : 0;
      $("meter-fill").style.width = pct.toFixed(1) + "%";
      $("votes").textContent = `${data.votes} of ${data.votes_needed} (${pct.toFixed(1)} %)`;
      $("complete").textContent = `${data.pairs_complete} of ${data.pairs}`;
      $("open").textContent = String(data.open_tasks);
      $("by-votes").textContent = Object.entries(data.pairs_by_votes)
        .map(([k, v]) => `${k} votes: ${v}`).join(", ");
      const body = $("raters");
      body.textContent = "";
      for (const r of data.raters) {
        const tr = document.createElement("tr");
        cell(tr, r.label);
        cell(tr, String(r.done));
        cell(tr, r.open ? "yes" : "");
        cell(tr, ago(r.last_seen_at, data.now));
        cell(tr, r.active ? "active" : "revoked");
        body.appendChild(tr);
      }
      $("updated").textContent = "updated " + new Date(data.now * 1000).toLocaleTimeString();
    } catch (e) {
      $("admin-error").textContent = "Cannot reach the server.";
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    refresh();
    setInterval(refresh, 5000);
  });
})();
