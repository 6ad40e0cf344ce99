// Live triage worklist. The server sends a snapshot of the worklist from the database on every
// (re)connect and then each change, so a dropped connection never hides an alert.
(function () {
  "use strict";
  const list = document.getElementById("alerts");
  const statusEl = document.getElementById("live-status");
  const announce = document.getElementById("announce");
  const t = JSON.parse(document.getElementById("i18n").textContent);
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const alerts = new Map();
  let backoff = 500;

  function rank(a) {
    if (a.status === "open") return a.severity === "red" ? 0 : 1;
    return 2;
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function render() {
    const sorted = [...alerts.values()]
      .filter((a) => a.status !== "resolved")
      .sort((a, b) => rank(a) - rank(b) || a.raised_at.localeCompare(b.raised_at));
    list.replaceChildren();
    if (!sorted.length) list.append(el("li", "empty", t.empty));
    for (const a of sorted) {
      const li = el("li", `alert ${a.severity} ${a.status}`);
      li.dataset.id = a.id;
      li.append(el("span", `badge ${a.severity}`, t[a.severity]));
      const link = el("a", "", a.patient.name);
      link.href = `/patients/${a.patient.id}/`;
      li.append(link, el("span", "reason", a.reason));
      const time = el("time", "", new Date(a.raised_at).toLocaleString([], {day: "numeric", month: "short", hour: "2-digit", minute: "2-digit"}));
      time.dateTime = a.raised_at;
      li.append(time);
      if (a.status === "open") {
        const button = el("button", "ack", t.acknowledge);
        button.type = "button";
        button.addEventListener("click", () => acknowledge(a.id, button));
        li.append(button);
      } else {
        li.append(el("span", "state", `${t.acknowledged} (${a.acknowledged_by})`));
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
    const socket = new WebSocket(`${scheme}://${location.host}/ws/alerts/`);
    socket.addEventListener("open", () => { backoff = 500; setStatus("live", t.live); });
    socket.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      if (data.type === "snapshot") {
        alerts.clear();
        for (const a of data.alerts) alerts.set(a.id, a);
      } else if (data.type === "alert") {
        const isNew = !alerts.has(data.alert.id);
        alerts.set(data.alert.id, data.alert);
        if (isNew) announce.textContent = `${t.newAlert}: ${t[data.alert.severity]} — ${data.alert.patient.name}. ${data.alert.reason}`;
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
