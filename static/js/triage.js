// Live triage worklist: one row per patient, the worst first. The server sends a snapshot of the
// worklist from the database on every (re)connect and then each changed alert, so a dropped
// connection never hides an alert. The messages stay per alert (alerts.consumers); this page
// groups them by patient, as alerts.selectors.worklist_rows does for the first render.
// The page's filters travel in the socket's query string and the server applies them (the same
// selector as the page): a change that takes an alert out of this filtered list arrives as
// {"type": "removed", "id": ...}.
// New and worsened alerts (a yellow turned red, a new finding on an open alert) are announced:
// read out (#announce), highlighted on their row, and counted in the tab title until the nurse
// marks them as seen. A red alert is acknowledged from here only after a dialog that says its
// escalation stops.
(function () {
  "use strict";
  const list = document.getElementById("alerts");
  const statusEl = document.getElementById("live-status");
  const announce = document.getElementById("announce");
  const notices = document.getElementById("notices");
  const changesEl = document.getElementById("changes");
  const changesText = document.getElementById("changes-text");
  const confirmRed = document.getElementById("confirm-red");
  const t = JSON.parse(document.getElementById("i18n").textContent);
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const query = list.dataset.query || "";
  const lang = document.documentElement.lang || undefined;
  const baseTitle = document.title;
  const heads = [...document.querySelectorAll("table.worklist thead th")].map((th) => th.textContent.trim());
  const alerts = new Map();
  const ticked = new Set();
  // patient id -> "new" | "worsened": rows highlighted until "Mark as seen".
  const changed = new Map();
  let snapshots = 0;
  let backoff = 500;

  function rank(a) {
    const red = a.severity === "red" ? 0 : 1;
    return (a.status === "open" ? 0 : 2) + red;
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function age(iso) {
    const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
    const format = new Intl.RelativeTimeFormat(lang, {numeric: "auto"});
    const abs = Math.abs(seconds);
    if (abs < 3600) return format.format(Math.round(seconds / 60), "minute");
    if (abs < 86400) return format.format(Math.round(seconds / 3600), "hour");
    return format.format(Math.round(seconds / 86400), "day");
  }

  // Worse than before: a yellow alert turned red, or an unresolved alert got a new finding
  // (its reason text changes with it; before, it changed silently).
  function worsened(before, after) {
    if (after.status === "resolved") return false;
    if (before.severity === "yellow" && after.severity === "red") return true;
    return (after.finding_count || 0) > (before.finding_count || 0);
  }

  function note(a, kind) {
    changed.set(a.patient.id, changed.get(a.patient.id) === "new" ? "new" : kind);
    const label = kind === "new" ? t.newAlert : t.worsened;
    announce.textContent = `${label}: ${t[a.severity]} — ${a.patient.name}. ${a.reason}`;
  }

  function showChanges() {
    const n = changed.size;
    document.title = n ? `(${n}) ${baseTitle}` : baseTitle;
    changesEl.hidden = !n;
    changesText.textContent = n === 1 ? t.changedOne : t.changedMany.replace("{n}", n);
  }

  function alertItem(a) {
    const li = el("li", `alert ${a.severity} ${a.status}`);
    li.dataset.id = a.id;
    if (a.status === "open" && a.severity === "yellow") {
      const label = el("label", "pick");
      const box = el("input");
      box.type = "checkbox"; box.name = "ids"; box.value = a.id;
      box.setAttribute("form", "bulk");
      box.checked = ticked.has(a.id);
      box.addEventListener("change", () => { box.checked ? ticked.add(a.id) : ticked.delete(a.id); });
      label.append(box, el("span", "sr-only", t.pick.replace("{name}", a.patient.name)));
      li.append(label);
    }
    li.append(el("span", `badge ${a.severity}`, t[a.severity]), " ");
    const reason = el("a", "reason", a.reason);
    reason.href = a.url || `/patients/${a.patient.id}/#alert-${a.id}`;
    li.append(reason, " ");
    const meta = el("span", "meta");
    const time = el("time", "", age(a.raised_at));
    time.dateTime = a.raised_at;
    time.title = new Date(a.raised_at).toLocaleString(lang);
    const findings = a.finding_count === 1 ? t.findingOne : t.findingMany.replace("{n}", a.finding_count);
    const assigned = a.assigned_to ? t.assignedTo.replace("{name}", a.assigned_to.name) : t.notAssigned;
    meta.append(time, " · ", el("span", "findings", findings), " · ", el("span", "assigned", assigned));
    meta.title = meta.textContent;  // cut short on a narrow line: the whole of it on hover
    li.append(meta, " ");
    if (a.status === "open") {
      const red = a.severity === "red";
      const button = el("button", red ? "ack red" : "ack", red ? t.acknowledgeRed : t.acknowledge);
      button.type = "button";
      button.addEventListener("click", () => (red ? confirmThenAcknowledge(a, button) : acknowledge(a.id, button)));
      li.append(button);
    } else {
      li.append(el("span", "state", `${t.acknowledged} (${a.acknowledged_by})`));
      if (a.new_evidence) li.append(" ", el("strong", "new-evidence", t.newEvidence));
    }
    return li;
  }

  function render() {
    const sorted = [...alerts.values()]
      .filter((a) => a.status !== "resolved")
      .sort((a, b) => rank(a) - rank(b) || a.raised_at.localeCompare(b.raised_at) || a.id - b.id);
    const rows = new Map();  // in the order of each patient's worst alert
    for (const a of sorted) {
      if (!rows.has(a.patient.id)) rows.set(a.patient.id, []);
      rows.get(a.patient.id).push(a);
    }
    for (const id of [...changed.keys()]) if (!rows.has(id)) changed.delete(id);
    list.replaceChildren();
    if (!rows.size) {
      const tr = el("tr", "empty");
      const td = el("td", "", t.empty);
      td.colSpan = 7;
      tr.append(td);
      list.append(tr);
    }
    for (const [patientId, items] of rows) {
      const worst = items[0];
      const p = worst.patient;
      const kind = changed.get(patientId);
      const tr = el("tr", `patient ${worst.severity} ${worst.status}${kind ? " changed" : ""}`);
      tr.dataset.patient = patientId;
      const badge = el("td");
      badge.append(el("span", `badge ${worst.severity}`, t[worst.severity]));
      const name = el("td", "name");
      const link = el("a", "patient-name", p.name);
      link.href = `/patients/${patientId}/`;
      name.append(link);
      if (kind) name.append(" ", el("strong", "change-tag", kind === "new" ? t.newAlert : t.worsened));
      const programs = [...new Set(items.map((a) => a.program).filter(Boolean))].sort().join(", ");
      const reasons = el("ul", "reasons");
      for (const a of items) reasons.append(alertItem(a));
      const reasonsCell = el("td", "reasons-cell");
      reasonsCell.append(reasons);
      const ageCell = el("td", "num", String(p.age ?? ""));
      const programCell = el("td", "program", programs);
      const countCell = el("td", "num count", String(items.length));
      // Named on a phone, where the table's head is hidden (triage.css).
      ageCell.dataset.label = heads[3]; programCell.dataset.label = heads[4]; countCell.dataset.label = heads[5];
      tr.append(badge, el("td", "cpr", p.cpr || ""), name, ageCell, programCell, countCell, reasonsCell);
      list.append(tr);
    }
    showChanges();
  }

  function confirmThenAcknowledge(a, button) {
    document.getElementById("confirm-red-who").textContent =
      t.redWho.replace("{name}", a.patient.name).replace("{reason}", a.reason.replace(/\.\s*$/, ""));
    document.getElementById("confirm-red-open").href = a.url || `/patients/${a.patient.id}/#alert-${a.id}`;
    confirmRed.returnValue = "";
    confirmRed.addEventListener("close", () => {
      if (confirmRed.returnValue === "confirm") acknowledge(a.id, button);
      else button.focus();
    }, {once: true});
    confirmRed.showModal();
  }

  async function acknowledge(id, button) {
    button.disabled = true;
    try {
      // The colour the nurse saw: if the alert turned red meanwhile, the server answers 409
      // with it as it is now, and the list shows it red (with its confirmation) instead.
      const seen = alerts.get(id);
      const expected = seen ? `?expected_severity=${encodeURIComponent(seen.severity)}` : "";
      const response = await fetch(`/api/v1/alerts/${id}/acknowledge${expected}`, {
        method: "POST", credentials: "same-origin",
        headers: {"X-CSRFToken": csrf, "Accept": "application/json"},
      });
      if (response.status === 200 || response.status === 409) {
        const alert = await response.json();
        alerts.set(alert.id, alert);
        if (alert.detail) announce.textContent = alert.detail;
        render();
        return;
      }
      throw new Error(String(response.status));
    } catch (e) {
      button.disabled = false;
      announce.textContent = t.failed;
    }
  }

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  document.getElementById("seen").addEventListener("click", () => {
    changed.clear();
    render();
  });

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // The live feed's own process: behind a proxy at /ws/ on this host; without one, on the
    // port the page names (LIVE_FEED_PORT), same host name so the session cookie goes along.
    const host = list.dataset.livePort ? `${location.hostname}:${list.dataset.livePort}` : location.host;
    const socket = new WebSocket(`${scheme}://${host}/ws/alerts/${query ? "?" + query : ""}`);
    // The server sends at least a heartbeat every LIVE_HEARTBEAT_SECONDS (20 s): silence for
    // three of those means the feed died without a close frame (a dropped network, a killed
    // process), so the page says so and reconnects instead of looking live and quiet.
    const silenceMs = Number(list.dataset.heartbeatSeconds || 20) * 3000;
    let silence = null;
    const listen = () => {
      clearTimeout(silence);
      silence = setTimeout(() => socket.close(), silenceMs);
    };
    socket.addEventListener("open", () => { backoff = 500; listen(); });
    socket.addEventListener("message", (event) => {
      listen();
      const data = JSON.parse(event.data);
      if (data.type === "snapshot") {
        // Live from here: the list is the server's. Not at "open": the snapshot would redraw
        // the list under a click made in between, and the click would be lost. After a
        // reconnect, what arrived or worsened while the socket was down is announced too.
        const before = new Map(alerts);
        alerts.clear();
        for (const a of data.alerts) {
          alerts.set(a.id, a);
          if (snapshots && !before.has(a.id)) note(a, "new");
          else if (snapshots && worsened(before.get(a.id), a)) note(a, "worsened");
        }
        snapshots += 1;
        render();
        setStatus("live", t.live);
        return;
      } else if (data.type === "alert") {
        const before = alerts.get(data.alert.id);
        alerts.set(data.alert.id, data.alert);
        if (!before && data.alert.status !== "resolved") note(data.alert, "new");
        else if (before && worsened(before, data.alert)) note(data.alert, "worsened");
      } else if (data.type === "removed") {
        alerts.delete(data.id);
        ticked.delete(data.id);
      } else if (data.type === "notify") {
        // An escalation naming this person (alerts.transports.websocket): kept on screen as a
        // link to the alert until the page is left; no patient data in it.
        const notice = document.createElement("p");
        notice.className = "notice escalation";
        notice.setAttribute("role", "alert");
        const link = document.createElement("a");
        link.href = data.notification.link;
        link.textContent = data.notification.text;
        notice.appendChild(link);
        notices.prepend(notice);
        return;
      } else {
        return;
      }
      render();
    });
    socket.addEventListener("close", (event) => {
      clearTimeout(silence);
      // 4401: the session ended (idle too long, logged out); 4403: not allowed. The page reloads,
      // so the login page shows instead of a list that looks live and is not.
      if (event.code === 4401 || event.code === 4403) { location.reload(); return; }
      setStatus("reconnecting", t.reconnecting);
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    });
  }

  connect();
})();
