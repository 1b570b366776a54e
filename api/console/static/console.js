// cityloop console: follows the live case stream and swaps in fresh server-rendered fragments;
// on a case page, sends actions through the API and shows what became of them. Plain JS.
"use strict";

(function () {
  const live = document.getElementById("live");
  const indicator = document.getElementById("live-state");
  const signIn = () => {
    window.location.assign("/console/login?reason=expired&next=" +
      encodeURIComponent(window.location.pathname + window.location.search));
  };

  // --- live: the stream says what changed, the server renders it ------------------------
  let refreshTimer = null;
  let changedCases = new Set();

  async function refresh() {
    refreshTimer = null;
    const changed = changedCases;
    changedCases = new Set();
    let answer;
    try {
      answer = await fetch(live.dataset.fragment, { credentials: "same-origin" });
    } catch (error) {
      return;
    }
    if (answer.redirected && new URL(answer.url).pathname === "/console/login") return signIn();
    if (!answer.ok && answer.status !== 404) return;
    live.innerHTML = await answer.text();
    live.dataset.refreshed = String(Number(live.dataset.refreshed || 0) + 1);
    for (const caseId of changed) {
      for (const element of live.querySelectorAll('[data-case-id="' + CSS.escape(caseId) + '"]')) {
        element.classList.add("flash");
      }
    }
  }

  function soon(delay) {
    if (refreshTimer === null) refreshTimer = setTimeout(refresh, delay);
  }

  function follow() {
    const types = JSON.parse(document.getElementById("event-types").textContent);
    const onlyCase = live.dataset.case || null;
    let position = live.dataset.position || "0";
    let stream = null;

    function heard(message) {
      if (message.lastEventId) position = message.lastEventId;
      const change = JSON.parse(message.data);
      const caseId = change.case && change.case.case_id;
      if (onlyCase && caseId !== onlyCase) return;
      if (caseId) changedCases.add(caseId);
      soon(300);
    }

    function connect() {
      // resume after the last event heard: the board was rendered at `position`
      stream = new EventSource("/v1/cases/stream?after=" + encodeURIComponent(position));
      stream.onopen = () => indicator && indicator.classList.add("on");
      stream.onerror = () => {
        indicator && indicator.classList.remove("on");
        stream.close();
        soon(0); // a session that ended shows as a redirect to the sign-in page
        setTimeout(connect, 3000);
      };
      for (const type of types) stream.addEventListener(type, heard);
    }

    connect();
    // deadlines pass without an event: the countdowns and "overdue" are redrawn now and then
    setInterval(() => soon(0), 30000);
  }

  if (live) follow();

  // --- actions on a case ----------------------------------------------------------------
  const actions = document.getElementById("actions");
  if (!actions) return;
  const caseId = actions.dataset.case;
  const words = JSON.parse(document.getElementById("console-labels").textContent);
  const panel = document.getElementById("action-form");
  const outcomes = document.getElementById("outcomes");

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (button && !button.closest("form")) openForm(button.dataset.action);
    if (event.target.closest("[data-close]")) panel.replaceChildren();
  });

  function openForm(action) {
    const template = document.getElementById("form-" + action);
    if (!template) return;
    panel.replaceChildren(template.content.cloneNode(true));
    const form = panel.querySelector("form");
    form.addEventListener("submit", submit);
    const first = form.querySelector("input, select, textarea");
    if (first) first.focus();
  }

  function bodyOf(form) {
    const body = { type: form.dataset.action };
    for (const element of form.elements) {
      if (!element.name || element.value === "") continue;
      const kind = element.dataset.kind;
      body[element.name] = kind === "integer" ? Number.parseInt(element.value, 10)
        : kind === "boolean" ? element.value === "true" : element.value;
    }
    return body;
  }

  function record(action) {
    outcomes.querySelector(".empty")?.remove();
    const item = document.createElement("li");
    item.className = "pending";
    item.dataset.action = action;
    outcomes.prepend(item);
    const show = (state, text) => {
      item.className = state;
      item.dataset.state = state;
      const label = document.createElement("span");
      label.className = "state";
      label.textContent = words.outcomes[state] || state;
      const what = document.createElement("b");
      what.textContent = (words.actions[action] || action) + " ";
      const detail = document.createElement("span");
      detail.className = "small";
      detail.textContent = text;
      item.replaceChildren(label, what, detail);
    };
    show("pending", "已提交，等待处理…");
    return show;
  }

  async function submit(event) {
    event.preventDefault();
    const form = event.target;
    const action = form.dataset.action;
    const show = record(action);
    form.querySelector("button[type=submit]").disabled = true;
    let answer;
    try {
      answer = await fetch("/v1/cases/" + encodeURIComponent(caseId) + "/actions", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(bodyOf(form)),
      });
    } catch (error) {
      show("rejected", "网络错误：" + error);
      return;
    }
    if (answer.status === 401) return signIn();
    const accepted = await answer.json();
    if (answer.status !== 202) {
      const detail = accepted.detail || {};
      show("rejected", (detail.reason || answer.status) + " — " + (detail.message || ""));
      form.querySelector("button[type=submit]").disabled = false;
      return;
    }
    panel.replaceChildren();
    for (let attempt = 0; attempt < 12; attempt += 1) {
      const status = await (await fetch(accepted.status_url + "?wait=5", { credentials: "same-origin" })).json();
      if (status.state === "applied") {
        const events = (status.event_types || []).map((type) => words.events[type] || type);
        show("applied", events.length ? "结果：" + events.join("、") : "");
        soon(0);
        return;
      }
      if (status.state === "rejected") {
        show("rejected", (words.rejections[status.reason] || "") + "（" + status.reason + "）");
        return;
      }
    }
    show("pending", "仍在处理；结果稍后出现在全程记录中");
  }
})();
