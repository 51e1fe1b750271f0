// The operator's live calls page (web/live.py): renders the board that /live/events streams.
// Plain JS, no build step. Every value from the server is set as text, never as HTML
// (agent names come from customers' routing plans).
"use strict";

(() => {
  const BASE = "/live";
  const RECONNECT_MS = 5000;
  const token = new URLSearchParams(window.location.search).get("token") || "";

  let board = null;
  let receivedAt = 0;
  let rendered = false; // rows new since the first render flash once
  const seen = new Set();

  // --- formatting ------------------------------------------------------------------------

  function phone(value) {
    let digits = String(value || "").replace(/\D/g, "");
    if (digits.length === 11 && digits.startsWith("1")) digits = digits.slice(1);
    if (digits.length !== 10) return String(value || "");
    return `${digits.slice(0, 3)}-${digits.slice(3, 6)}-${digits.slice(6)}`;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(Number(seconds) || 0));
    const m = Math.floor(s / 60);
    return m ? `${m}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`;
  }

  function clock(epochSeconds) {
    if (!epochSeconds) return "";
    return new Date(epochSeconds * 1000).toLocaleTimeString([], { hour12: false });
  }

  function label(value) {
    return String(value || "").replace(/_/g, " ");
  }

  // --- DOM helpers (text only) -----------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === "") continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function legChip(leg) {
    const who = leg.name || `agent ${leg.agent_id}`;
    return el("span", {
      class: "leg",
      "data-leg-id": leg.leg_id,
      "data-agent-id": leg.agent_id,
      "data-state": leg.state,
      title: `${who} (#${leg.agent_id}) ${phone(leg.phone)}, tier ${leg.tier}`,
    },
    el("span", { class: "agent" }, who),
    el("span", { class: "tier" }, `T${leg.tier}`),
    el("span", { class: "state" }, label(leg.state)));
  }

  function legs(list) {
    return el("div", { class: "legs" }, ...(list || []).map(legChip));
  }

  function lead(call) {
    return el("td", {},
      el("span", { class: "phone" }, phone(call.lead_phone)),
      el("span", { class: "sub guid" }, call.tracking_guid));
  }

  function fresh(row, guid) {
    if (!seen.has(guid)) {
      seen.add(guid);
      if (rendered) row.classList.add("new");
    }
    return row;
  }

  // --- rendering -------------------------------------------------------------------------

  function liveRow(call) {
    const triedTiers = call.tiers_tried || [];
    const tried = triedTiers.join(", ");
    // no tier racing (connected, voicemail): the last tier tried
    const tier = call.tier ?? triedTiers[triedTiers.length - 1] ?? null;
    const row = el("tr", {
      class: "call",
      "data-guid": call.tracking_guid,
      "data-state": call.state,
    },
    lead(call),
    el("td", {}, call.campaign, el("span", { class: "sub" }, call.plantype)),
    el("td", { class: "num waiting", "data-waiting": call.waiting_s }, duration(call.waiting_s)),
    el("td", { class: "call-state" }, label(call.state)),
    el("td", { class: "num tier" }, tier === null ? "–" : String(tier),
      tried ? el("span", { class: "sub" }, `tried ${tried}`) : null),
    el("td", {}, legs(call.legs)));
    return fresh(row, `live:${call.tracking_guid}`);
  }

  function agentCell(call) {
    if (call.winner) {
      return el("td", {}, call.winner.name || `agent ${call.winner.agent_id}`,
        el("span", { class: "sub" }, `#${call.winner.agent_id}`));
    }
    return el("td", {}, "–", el("span", { class: "sub" }, `Agent1ID ${call.agent1_id}`));
  }

  function finishedRow(call) {
    const row = el("tr", {
      class: "call",
      "data-guid": call.tracking_guid,
      "data-outcome": call.outcome,
    },
    el("td", { class: "num" }, clock(call.finished_at)),
    lead(call),
    el("td", {}, call.campaign),
    el("td", {}, el("span", { class: "outcome", "data-outcome": call.outcome },
      label(call.outcome))),
    agentCell(call),
    el("td", { class: "num" }, duration(call.duration_s)),
    el("td", { class: "num" }, (call.tiers_tried || []).join(", ") || "–"),
    el("td", {}, legs(call.legs)));
    return fresh(row, `done:${call.tracking_guid}`);
  }

  function fill(tableId, emptyId, rows) {
    document.querySelector(`#${tableId} tbody`).replaceChildren(...rows);
    document.getElementById(emptyId).hidden = rows.length > 0;
  }

  function render() {
    const live = board.live || [];
    fill("live-calls", "live-empty", live.map(liveRow));
    fill("finished-calls", "finished-empty", (board.finished || []).map(finishedRow));
    const ringing = live.flatMap((call) => call.legs || [])
      .filter((leg) => leg.state === "ringing").length;
    document.getElementById("live-count").textContent = String(live.length);
    document.getElementById("ringing-count").textContent = String(ringing);
    const service = document.getElementById("service-state");
    service.textContent = board.ready ? "" : "draining: not taking calls";
    service.className = board.ready ? "service" : "service draining";
    document.getElementById("updated").textContent =
      `Updated ${clock(board.server_time)} (server time)`;
    rendered = true;
  }

  // Waiting times tick here between server updates (the stream is quiet while nothing changes).
  function tick() {
    const elapsed = (performance.now() - receivedAt) / 1000;
    for (const cell of document.querySelectorAll("td.waiting[data-waiting]")) {
      cell.textContent = duration(Number(cell.dataset.waiting) + elapsed);
    }
  }

  // --- the stream ------------------------------------------------------------------------

  function status(state, text) {
    const node = document.getElementById("connection");
    node.className = `connection ${state}`;
    node.textContent = text;
  }

  function connect() {
    const source = new EventSource(`${BASE}/events?token=${encodeURIComponent(token)}`);
    source.addEventListener("open", () => status("live", "live"));
    source.addEventListener("snapshot", (event) => {
      board = JSON.parse(event.data);
      receivedAt = performance.now();
      render();
      status("live", "live");
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // refused (401, 503 too many viewers) or gone: try again later, by hand
        status("closed", "disconnected, retrying…");
        setTimeout(connect, RECONNECT_MS);
      } else {
        status("connecting", "reconnecting…");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    connect();
    setInterval(tick, 1000);
  });
})();
