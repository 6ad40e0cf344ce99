// Live triage worklist. The server sends a snapshot of the worklist from the database on every
// (re)connect and then each change, so a dropped connection never hides an alert.
// The page's filters travel in the socket's query string and the server applies them (the same
// selector as the page): a change that takes an alert out of this filtered list arrives as
// {"type": "removed", "id": ...}.
(function () {
  "use strict";
  const list = document.getElementById("alerts");
  const statusEl = document.getElementById("live-status");
  const announce = document.getElementById("announce");
  const notices = document.getElementById("notices");
  const t = JSON.parse(document.getElementById("i18n").textContent);
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const query = list.dataset.query || "";
  const lang = document.documentElement.lang || undefined;
  const alerts = new Map();
  const ticked = new Set();
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

  function render() {
    const sorted = [...alerts.values()]
      .filter((a) => a.status !== "resolved")
      .sort((a, b) => rank(a) - rank(b) || a.raised_at.localeCompare(b.raised_at) || a.id - b.id);
    list.replaceChildren();
    if (!sorted.length) list.append(el("li", "empty", t.empty));
    for (const a of sorted) {
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
      li.append(el("span", `badge ${a.severity}`, t[a.severity]));
      const link = el("a", "", a.patient.name);
      link.href = a.url || `/patients/${a.patient.id}/#alert-${a.id}`;
      li.append(link, el("span", "reason", a.reason));
      const meta = el("span", "meta");
      const time = el("time", "", age(a.raised_at));
      time.dateTime = a.raised_at;
      time.title = new Date(a.raised_at).toLocaleString(lang);
      const findings = a.finding_count === 1 ? t.findingOne : t.findingMany.replace("{n}", a.finding_count);
      const assigned = a.assigned_to ? t.assignedTo.replace("{name}", a.assigned_to.name) : t.notAssigned;
      meta.append(time, " · ", el("span", "findings", findings), " · ", el("span", "assigned", assigned));
      li.append(meta);
      if (a.status === "open") {
        const button = el("button", "ack", t.acknowledge);
        button.type = "button";
        button.addEventListener("click", () => acknowledge(a.id, button));
        li.append(button);
      } else {
        li.append(el("span", "state", `${t.acknowledged} (${a.acknowledged_by})`));
        if (a.new_evidence) li.append(el("strong", "new-evidence", t.newEvidence));
      }
      list.append(li);
    }
  }

  async function acknowledge(id, button) {
    button.disabled = true;
    try {
      const response = await fetch(`/api/v1/alerts/${id}/acknowledge`, {
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

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // The live feed's own process: behind a proxy at /ws/ on this host; without one, on the
    // port the page names (LIVE_FEED_PORT), same host name so the session cookie goes along.
    const host = list.dataset.livePort ? `${location.hostname}:${list.dataset.livePort}` : location.host;
    const socket = new WebSocket(`${scheme}://${host}/ws/alerts/${query ? "?" + query : ""}`);
    socket.addEventListener("open", () => { backoff = 500; });
    socket.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      if (data.type === "snapshot") {
        // Live from here: the list is the server's. Not at "open": the snapshot would redraw
        // the list under a click made in between, and the click would be lost.
        alerts.clear();
        for (const a of data.alerts) alerts.set(a.id, a);
        render();
        setStatus("live", t.live);
        return;
      } else if (data.type === "alert") {
        const isNew = !alerts.has(data.alert.id);
        alerts.set(data.alert.id, data.alert);
        if (isNew) announce.textContent = `${t.newAlert}: ${t[data.alert.severity]} — ${data.alert.patient.name}. ${data.alert.reason}`;
      } else if (data.type === "removed") {
        alerts.delete(data.id);
        ticked.delete(data.id);
      } else if (data.type === "notify") {
        // An escalation naming this person (alerts.transports.websocket): kept on screen as a
        // link to the alert until the page is left; no patient data in it.
        const note = document.createElement("p");
        note.className = "notice escalation";
        note.setAttribute("role", "alert");
        const link = document.createElement("a");
        link.href = data.notification.link;
        link.textContent = data.notification.text;
        note.appendChild(link);
        notices.prepend(note);
        return;
      } else {
        return;
      }
      render();
    });
    socket.addEventListener("close", () => {
      setStatus("reconnecting", t.reconnecting);
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    });
  }

  connect();
})();
