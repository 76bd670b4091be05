// The signed-in page's one WebSocket (protocol: docs/api.md, "Real time"). It resumes from
// the last event it saw, sends heartbeats, reconnects with back-off, and re-dispatches
// every event on `live` as "mesteri:<type>" so pages can listen. Progressive enhancement:
// every page works without it.
export const live = new EventTarget();

const HEARTBEAT_MS = 25_000;
const PONG_GRACE_MS = 10_000;
const RETRY_MS = [500, 1_000, 2_000, 5_000, 10_000, 30_000];

let socket = null;
let lastId = null;
let attempt = 0;
let heartbeat = 0;
let pongTimer = 0;

export function resumeFrom(id) {
  const n = Number(id);
  if (Number.isInteger(n) && n >= 0 && (lastId === null || n > lastId)) lastId = n;
}

export function send(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

function emit(type, data, id) {
  live.dispatchEvent(new CustomEvent(`mesteri:${type}`, { detail: { data, id } }));
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws`);
  socket.addEventListener("open", () => {
    const hello = { type: "hello" };
    if (lastId !== null) hello.resume = lastId;
    socket.send(JSON.stringify(hello));
  });
  socket.addEventListener("message", (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame.type === "ready") { attempt = 0; startHeartbeat(); emit("ready", frame.data); return; }
    if (frame.type === "pong") { clearTimeout(pongTimer); return; }
    if (typeof frame.id === "number") lastId = frame.id;
    if (frame.type === "resync" && frame.data && typeof frame.data.last_event_id === "number") {
      lastId = frame.data.last_event_id;
    }
    emit(frame.type, frame.data, frame.id);
  });
  socket.addEventListener("close", (event) => {
    stopHeartbeat();
    emit("closed", { code: event.code });
    if (event.code === 4001 || event.code === 4003) return; // signed out: nothing to resume
    const delay = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
    attempt += 1;
    setTimeout(connect, delay * (0.75 + Math.random() / 2));
  });
}

function startHeartbeat() {
  stopHeartbeat();
  heartbeat = setInterval(() => {
    send({ type: "ping" });
    clearTimeout(pongTimer);
    // No answer: the connection is dead even if the browser has not noticed.
    pongTimer = setTimeout(() => socket && socket.close(), PONG_GRACE_MS);
  }, HEARTBEAT_MS);
}

function stopHeartbeat() {
  clearInterval(heartbeat);
  clearTimeout(pongTimer);
}

// The navigation's badges: unread conversations and notifications.
let badgeTimer = 0;
async function refreshBadges() {
  const response = await fetch("/badges", { headers: { accept: "application/json" } });
  if (!response.ok) return;
  const counts = await response.json();
  setBadge("inbox-badge", counts.conversations);
  setBadge("bell-badge", counts.notifications);
}

function setBadge(id, count) {
  const badge = document.getElementById(id);
  if (!badge) return;
  badge.textContent = count > 99 ? "99+" : String(count);
  badge.hidden = !count;
}

function soon() {
  clearTimeout(badgeTimer);
  badgeTimer = setTimeout(refreshBadges, 300);
}

live.addEventListener("mesteri:notification.new", (e) => setBadge("bell-badge", e.detail.data.unread));
live.addEventListener("mesteri:notification.read", (e) => setBadge("bell-badge", e.detail.data.unread));
for (const type of ["message.new", "message.read", "ready", "resync"]) {
  live.addEventListener(`mesteri:${type}`, soon);
}

const start = document.querySelector("[data-last-event]");
if (start) resumeFrom(start.dataset.lastEvent);
connect();
refreshBadges();
