// The player page: a phone or laptop as a player station. It speaks the same node protocol as the
// Pi firmware: it answers clock-sync requests and stamps each press with its own clock, so the hub
// ranks its presses by when the player pressed, not by when the press crossed the Wi-Fi.
//
// The page's clock is performance.now(): monotonic, sub-millisecond, unaffected by the wall clock,
// but it starts again at every page load. So a press taken before a reload has no meaning in the
// new page's clock; such a press is not sent again (see restoreOutbox).

const PROTOCOL = 1;
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 1000;
const REFUSED_RETRY_MS = 5000; // the host may open the door again; ask now and then
const FLUSH_FALLBACK_MS = 1500; // a hub that never says "synced" still gets the waiting presses
const CLOSE = { badToken: 4401, refused: 4403, replaced: 4409, version: 4426 };
const PROFILE_KEY = "buzzer-player";
const OUTBOX_KEY = "buzzer-outbox";

const $ = (id) => document.getElementById(id);
const randomId = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => (b % 36).toString(36)).join("");
const nowNs = () => Math.round(performance.now() * 1e6);
const BOOT = randomId(6); // names this page load, and so this performance.now() clock

/** When the input happened, in performance.now()'s clock, as integer ns.
 * event.timeStamp is on the same clock and marks the input itself, before any work queued ahead
 * of this handler; a browser reporting anything implausible gets the handler's own reading. */
function pressNs(event) {
  const now = performance.now();
  const t = event.timeStamp;
  return Math.round((t > 0 && t <= now && now - t < 1000 ? t : now) * 1e6);
}

function load(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}
const save = (key, value) => localStorage.setItem(key, JSON.stringify(value));

// --- who this player is: kept across reloads, so a reload is the same player to the hub ---

const query = new URLSearchParams(location.search);
const profile = { id: `web-${randomId(10)}`, name: "", team: "", token: "", ...load(PROFILE_KEY, {}) };
if (query.get("token")) profile.token = query.get("token");
save(PROFILE_KEY, profile);

// --- the outbox: every press stays here until the hub has both saved it (ack) and judged it ---
// (result). An ack alone is not enough: after a reconnect the hub may ack a press whose result
// went to the dead link, and only sending the press again brings that result back.

let outbox = load(OUTBOX_KEY, []);
let pressCount = 0;

/** Presses from an earlier page load carry a timestamp in a clock that no longer exists: sending
 * it would place the press anywhere in the round. Drop them, and say so on the page. */
function restoreOutbox() {
  const stale = outbox.filter((item) => item.boot !== BOOT);
  outbox = outbox.filter((item) => item.boot === BOOT);
  save(OUTBOX_KEY, outbox);
  if (stale.length) {
    notice(
      `${stale.length === 1 ? "A press" : `${stale.length} presses`} from before the page reloaded ` +
        "had not been confirmed by the hub. Its time does not survive a reload, so it was not " +
        "sent again; if it never reached the hub, it did not count.",
    );
  }
}

// --- what the page shows: the same story the node's LED tells ---

const view = {
  live: false,
  refused: "",
  round: { number: null, state: "idle", locked_out: false }, // null: not heard from the hub yet
  released: false, // the release instant has passed in our clock: the light is on
  pressedRound: null, // round number of our latest press (local proof before the hub answers)
  result: null,
  acked: false,
};
let releaseTimer = null;

function ordinal(n) {
  const tail = n % 100 >= 11 && n % 100 <= 13 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th";
  return `${n}${tail}`;
}

function look() {
  const { round, result } = view;
  if (view.refused) return ["refused", "Not playing", view.refused];
  if (!view.live) return ["reconnecting", "Reconnecting…", "Your presses are kept and sent when the hub is back."];
  // An early press while the hub waits for the next question is judged for that next round.
  const early = result && result.flags.includes("early") && result.round === round.number + 1;
  if (result && (result.round === round.number || early)) {
    const detail = result.text;
    if (result.rank === 1) return ["first", "1st!", detail, result.reaction_ns !== null ? `${(result.reaction_ns / 1e9).toFixed(3)} s` : ""];
    if (result.rank) return ["behind", ordinal(result.rank), detail, `+${(result.behind_ns / 1e6).toFixed(1)} ms`];
    if (result.flags.includes("early")) return ["early", "Too early", detail];
    return ["early", "Not counted", detail];
  }
  if (round.out && round.state === "armed") return ["out", "Out", "You (or your team) answered this question: wait for the next one."];
  if (round.locked_out) return ["early", "Locked out", "You pressed before the light came on."];
  if (view.pressedRound === round.number && round.state !== "idle") {
    return ["pressed", "Pressed", view.acked ? "The hub has your press; waiting for the result…" : "Sending your press…"];
  }
  if (round.state === "armed" && view.released) return ["armed", "BUZZ!", "Press now!"];
  if (round.state === "armed") return ["idle", "Get ready", ""];
  return ["idle", "Wait…", round.state === "decided" && round.winner ? `${round.winner} was first.` : "Waiting for the host to arm."];
}

function render() {
  const [name, headline, detail, subline = ""] = look();
  // The attributes are for people debugging a station (and for the browser tests).
  Object.assign(document.body.dataset, { look: name, player: profile.id, synced: view.round.synced === true, waiting: outbox.length });
  $("headline").textContent = headline;
  $("subline").textContent = subline;
  $("detail").textContent = detail;
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

function vibrate(pattern) {
  if (navigator.vibrate) navigator.vibrate(pattern);
}

// Keep the screen on while a round is in play (where the browser allows it).
let wakeLock = null;
async function keepAwake(on) {
  try {
    if (on && !wakeLock && navigator.wakeLock && document.visibilityState === "visible") {
      wakeLock = await navigator.wakeLock.request("screen");
      wakeLock.addEventListener("release", () => (wakeLock = null));
    } else if (!on && wakeLock) {
      await wakeLock.release();
    }
  } catch {
    wakeLock = null; // refused (battery saver, no permission): the page works without it
  }
}
document.addEventListener("visibilitychange", () => keepAwake(view.round.state === "armed" || view.round.state === "decided"));

// --- the link to the hub ---

let ws = null;
let retryMs = FIRST_RETRY_MS;
let retryTimer = null;
let flushTimer = null;
let syncsAnswered = 0;
let flushed = false; // waiting presses sent on this link
let lastError = "";
let everLive = false;
let failedOpens = 0;

function connect() {
  clearTimeout(retryTimer);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const token = profile.token ? `?token=${encodeURIComponent(profile.token)}` : "";
  const socket = new WebSocket(`${scheme}//${location.host}/${token}`);
  ws = socket;
  syncsAnswered = 0;
  flushed = false;
  socket.onopen = () => {
    const hello = { type: "hello", protocol: PROTOCOL, role: "node", id: profile.id, name: profile.name, input: "browser" };
    if (profile.team) hello.team = profile.team;
    if (profile.token) hello.token = profile.token;
    socket.send(JSON.stringify(hello));
  };
  socket.onmessage = (event) => {
    const receivedNs = nowNs(); // t1 of a sync: taken before anything else is done with it
    if (socket === ws) receive(JSON.parse(event.data), receivedNs);
  };
  socket.onclose = (event) => {
    if (socket === ws) closed(event);
  };
}

function send(message) {
  if (!ws || ws.readyState !== WebSocket.OPEN || !view.live) return false;
  ws.send(JSON.stringify(message));
  return true;
}

async function explainFailure() {
  try {
    const state = await (await fetch("/api/state", { cache: "no-store" })).json();
    if (state.join && state.join.token_required && !view.live) {
      clearTimeout(retryTimer);
      view.refused = "This hub needs a player token (or a different one): ask the host.";
      render();
      showJoin(view.refused, true);
    }
  } catch {
    // the hub is not answering at all: keep retrying
  }
}

function receive(message, receivedNs) {
  switch (message.type) {
    case "sync":
      // t2 is read at the last moment, so the hub can subtract our own handling time.
      ws.send(JSON.stringify({ type: "sync_reply", seq: message.seq, t0_ns: message.t0_ns, t1_ns: receivedNs, t2_ns: nowNs() }));
      syncsAnswered += 1;
      document.body.dataset.syncs = syncsAnswered;
      break;
    case "welcome":
      view.live = true;
      everLive = true;
      view.refused = "";
      retryMs = FIRST_RETRY_MS;
      lastError = "";
      // Waiting presses go once the hub has synced our clock (its "round" with synced: true).
      flushTimer = setTimeout(flush, FLUSH_FALLBACK_MS);
      if (message.round) onRound(message.round);
      else render();
      break;
    case "round":
      onRound(message);
      // The hub says so the moment it has synced our clock: waiting presses can be placed now.
      if (message.synced && !flushed) flush();
      break;
    case "ack":
      settle(message.press_id, "acked");
      view.acked = true;
      render();
      break;
    case "result":
      settle(message.press_id, "judged");
      view.result = message;
      if (message.rank === 1) vibrate([200, 80, 200]);
      else if (message.rank) vibrate(60);
      else vibrate([40, 40, 40, 40, 40]);
      render();
      break;
    case "offer":
    case "ruling":
    case "timer":
      notice(message.text);
      break;
    case "error":
      lastError = message.message;
      break;
  }
}

function onRound(round) {
  // A new round clears the last result and notice; the first word after loading does not (it
  // must not hide the notice about presses lost to a reload).
  const fresh = view.round.number !== null && round.number !== view.round.number;
  view.round = round;
  if (fresh) {
    view.result = null;
    view.acked = false;
    notice("");
  }
  clearTimeout(releaseTimer);
  view.released = false;
  if (round.state === "armed" && !round.locked_out) {
    // Light up at the hub's release instant, given in our own clock, so nobody sees it earlier.
    const waitMs = round.release_ns === null ? 0 : round.release_ns / 1e6 - performance.now();
    releaseTimer = setTimeout(() => {
      view.released = true;
      render();
    }, Math.max(0, waitMs));
  }
  keepAwake(round.state === "armed" || round.state === "decided");
  render();
}

function flush() {
  clearTimeout(flushTimer);
  flushed = true;
  for (const item of outbox) sendPress(item);
}

/** A press, with when it leaves: the time it spent here is time the hub waits for it. */
function sendPress(item) {
  send({ type: "press", press_id: item.press_id, at_ns: item.at_ns, sent_ns: nowNs() });
}

function closed(event) {
  view.live = false;
  clearTimeout(flushTimer);
  clearTimeout(releaseTimer);
  view.released = false;
  let wait = retryMs;
  retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
  if (event.code === CLOSE.badToken) {
    view.refused = lastError || "The hub needs a player token: ask the host for it.";
    render();
    showJoin(view.refused, true);
    return;
  }
  if (event.code === CLOSE.version) {
    view.refused = lastError || "This page and the hub do not match: reload the page.";
    render();
    return;
  }
  if (event.code === CLOSE.replaced) {
    view.refused = "This player is now playing in another tab or window.";
    render();
    return;
  }
  if (event.code === CLOSE.refused) {
    view.refused = lastError || "The host is not taking players from phones or laptops right now.";
    wait = REFUSED_RETRY_MS;
  }
  failedOpens = everLive ? 0 : failedOpens + 1;
  // A hub that checks tokens before the WebSocket opens answers with HTTP 401, which a browser
  // reports as nothing but a failed connection: ask the hub (plain HTTP) whether it wants one.
  if (failedOpens === 2) explainFailure();
  render();
  retryTimer = setTimeout(connect, wait);
}

// --- pressing ---

/** Note an ack or a result for a waiting press; it leaves the outbox once it has both. */
function settle(pressId, what) {
  for (const item of outbox) if (item.press_id === pressId) item[what] = true;
  outbox = outbox.filter((item) => !(item.acked && item.judged));
  save(OUTBOX_KEY, outbox);
}

function press(atNs) {
  if (!ws || view.refused) return;
  pressCount += 1;
  document.body.dataset.presses = pressCount;
  const item = { press_id: `${profile.id}-${BOOT}-${pressCount}`, at_ns: atNs, boot: BOOT };
  outbox.push(item);
  save(OUTBOX_KEY, outbox);
  // Until the hub has synced this link's clock, the press waits with the others (flush).
  if (flushed) sendPress(item);
  // Proof the press registered, at once, whatever the link is doing.
  const buzzer = $("buzzer");
  buzzer.classList.add("flash");
  setTimeout(() => buzzer.classList.remove("flash"), 120);
  vibrate(30);
  view.pressedRound = view.round.number;
  view.acked = false;
  render();
}

$("buzzer").addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  event.preventDefault();
  press(pressNs(event));
});
$("buzzer").addEventListener("keydown", (event) => {
  if (event.key === "Enter") event.preventDefault(); // a focused button would click on Enter
});
document.addEventListener("keydown", (event) => {
  if (event.code !== "Space" || $("station").hidden) return;
  event.preventDefault(); // no scrolling, no button click
  if (event.repeat) return; // a held key is one press
  press(pressNs(event));
});
document.addEventListener("keyup", (event) => {
  if (event.code === "Space") event.preventDefault();
});

// --- joining ---

function showJoin(error = "", needToken = false) {
  $("join").hidden = false;
  $("station").hidden = true;
  $("name").value = profile.name;
  $("team").value = profile.team;
  $("token").value = profile.token;
  $("token-row").hidden = !(needToken || profile.token);
  $("join-error").textContent = error;
  $("join-error").hidden = !error;
}

function start() {
  $("join").hidden = true;
  $("station").hidden = false;
  $("who-name").textContent = profile.team ? `${profile.name} · ${profile.team}` : profile.name;
  view.refused = "";
  everLive = false;
  failedOpens = 0;
  if (ws) {
    ws.onclose = null;
    ws.close(1000, "joining again");
  }
  ws = null;
  render();
  connect();
}

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  profile.name = $("name").value.trim();
  profile.team = $("team").value.trim();
  profile.token = $("token").value.trim();
  if (!profile.name) return;
  save(PROFILE_KEY, profile);
  start();
});
$("change").addEventListener("click", () => showJoin());

restoreOutbox();
if (profile.name) start();
else showJoin();
