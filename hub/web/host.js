// The host console: sign in with the host token, run rounds, watch presses arrive.
// Everything shown comes from the hub's `state` pictures; this page keeps no game rules.

import { HubLink, el, flagChips, gap, ms, showLink } from "/common.js";
import { gameKey, gameMessage, renderGame, setupGame } from "/game.js";

const TOKEN_KEY = "buzzer-beater.host-token"; // sessionStorage: survives a reload, not the tab
const MUTE_KEY = "buzzer-beater.muted"; // localStorage: a host who muted once wants it muted

const $ = (id) => document.getElementById(id);
let link = null;
let latest = null; // the last state picture, and when it arrived (for "last seen" ages)
let receivedAt = 0;
let audio = null;
let beeps = 0;
let pressesSeen = new Map(); // round number -> whether we saw it without presses

// --- sign-in ---

function showSignIn(message) {
  $("console").hidden = true;
  $("sign-out").hidden = true;
  $("signin").hidden = false;
  const error = $("signin-error");
  error.hidden = !message;
  error.textContent = message || "";
  $("token").focus();
}

function signIn(token) {
  if (link) link.stop();
  $("signin").hidden = true;
  link = new HubLink({
    hello: { role: "host", token, name: "host console" },
    onState: render,
    onStatus: (state, text) => {
      showLink($("link"), state, text);
      document.body.dataset.link = state; // controls are disabled unless the link is live
      if (state === "live") {
        $("console").hidden = false;
        $("sign-out").hidden = false;
      }
    },
    onRefused: (why) => {
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn(`The hub refused this token: ${why}`);
    },
    onMessage: gameMessage,
  });
  link.start();
}

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!token) return;
  unlockAudio(); // a click is the user gesture browsers want before they play sound
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  signIn(token);
});

$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  if (link) link.stop();
  link = null;
  showLink($("link"), "refused", "Signed out");
  showSignIn("");
});

// --- controls ---

function command(type) {
  if (!link || !link.send({ type })) return;
  unlockAudio();
}

for (const type of ["arm", "reset", "close"]) {
  $(type).addEventListener("click", (event) => {
    command(type);
    // A mouse click must not leave focus on the button: Space would then press it again
    // instead of arming. Keyboard users (detail 0) keep their focus.
    if (event.detail > 0) event.currentTarget.blur();
  });
}

// Let /play pages join, or turn them away (those already in are dropped with a message).
$("browser-players").addEventListener("change", (event) => {
  if (!link || !link.send({ type: "players", browser: event.currentTarget.checked })) {
    event.currentTarget.checked = !event.currentTarget.checked;
  }
});

document.addEventListener("keydown", (event) => {
  if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
  if (event.repeat) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  // Space and Enter on a focused button are that button's own click.
  if (event.target instanceof HTMLButtonElement && (event.key === " " || event.key === "Enter")) {
    return;
  }
  const key = event.key.toLowerCase();
  if (key === "m") {
    toggleMute();
  } else if ($("console").hidden) {
    return;
  } else if (key === "a" || key === " ") {
    command("arm");
  } else if (key === "r") {
    command("reset");
  } else if (key === "c") {
    command("close");
  } else if (gameKey(key)) {
    unlockAudio();
  } else {
    return;
  }
  event.preventDefault();
});

// --- sound on the first press ---

function unlockAudio() {
  if (!audio && window.AudioContext) audio = new AudioContext();
  if (audio && audio.state === "suspended") audio.resume();
}

function muted() {
  return localStorage.getItem(MUTE_KEY) === "1";
}

function toggleMute() {
  localStorage.setItem(MUTE_KEY, muted() ? "0" : "1");
  showMute();
}

function showMute() {
  const button = $("mute");
  button.setAttribute("aria-pressed", String(muted()));
  button.firstChild.textContent = muted() ? "Sound off " : "Sound on ";
}

$("mute").addEventListener("click", toggleMute);

/** A short two-tone chime; counted in data-beeps so the page's behaviour can be checked. */
function beep() {
  beeps += 1;
  document.body.dataset.beeps = String(beeps);
  if (muted() || !audio) return;
  const start = audio.currentTime;
  for (const [offset, pitch] of [[0, 880], [0.12, 1320]]) {
    const tone = audio.createOscillator();
    const level = audio.createGain();
    tone.frequency.value = pitch;
    level.gain.setValueAtTime(0.25, start + offset);
    level.gain.exponentialRampToValueAtTime(0.001, start + offset + 0.25);
    tone.connect(level).connect(audio.destination);
    tone.start(start + offset);
    tone.stop(start + offset + 0.3);
  }
}

/** The answer timer's beeps: one short tone for the warning, a long low one when time is up;
 * counted in data-timer-beeps. */
function timerBeep(kind) {
  const count = Number(document.body.dataset.timerBeeps || "0") + 1;
  document.body.dataset.timerBeeps = String(count);
  document.body.dataset.lastTimerBeep = kind;
  if (muted() || !audio) return;
  const start = audio.currentTime;
  const [pitch, length] = kind === "warning" ? [660, 0.15] : [330, 0.7];
  const tone = audio.createOscillator();
  const level = audio.createGain();
  tone.frequency.value = pitch;
  level.gain.setValueAtTime(0.3, start);
  level.gain.exponentialRampToValueAtTime(0.001, start + length);
  tone.connect(level).connect(audio.destination);
  tone.start(start);
  tone.stop(start + length + 0.05);
}

setupGame((message) => {
  if (!link || !link.send(message)) return false;
  unlockAudio();
  return true;
}, timerBeep);

function soundOnFirstPress(round) {
  const hasPresses = round.results.length > 0;
  const before = pressesSeen.get(round.number);
  // Only a round seen empty and now with a press chimes: a reload never replays old rounds.
  if (before === false && hasPresses) beep();
  pressesSeen.set(round.number, hasPresses);
  if (pressesSeen.size > 20) pressesSeen = new Map([[round.number, hasPresses]]);
}

// --- rendering ---

function render(state) {
  latest = state;
  receivedAt = performance.now();
  const round = state.round;
  soundOnFirstPress(round);
  renderStatus(round);
  renderRanking(round, state.game);
  renderRoster();
  if (state.join) $("browser-players").checked = state.join.browser_players;
  renderHistory(state.history);
  renderGame(state);
}

function renderStatus(round) {
  $("round-number").textContent = String(round.number);
  const badge = $("round-state");
  badge.textContent = round.state;
  badge.dataset.state = round.state;
  let detail;
  if (round.number === 0) detail = "No round yet: press Arm.";
  else if (round.state === "armed") detail = round.results.length ? "Deciding…" : "Armed: waiting for the first press.";
  else if (round.winner) detail = `${round.winner} buzzed first (decided after waiting ${ms(round.adjudication_wait_ns, 2)}).`;
  else if (round.state === "closed") detail = "Closed: no more presses count.";
  else detail = "Ready: press Arm for the next round.";
  $("round-detail").textContent = detail;
}

function renderRanking(round, game) {
  // A tie the hub could not settle (tie rule "host"): nobody has the floor until the host gives it.
  const settle = round.state === "decided" && game && !game.answering;
  const giveFloor = (player) => {
    const button = el("button", { class: "give-floor", type: "button", title: "give this player the floor" }, "Give floor");
    button.addEventListener("click", () => link && link.send({ type: "floor", player }));
    return button;
  };
  const rows = round.results.map((r) =>
    el(
      "tr",
      { dataset: { player: r.player, rank: r.rank, behindNs: r.behind_ns ?? "" }, class: r.rank === 1 ? "winner" : null },
      el("td", { class: "rank" }, r.rank),
      el("td", { class: "name" }, r.name),
      el("td", { class: "reaction num" }, ms(r.reaction_ns, 1)),
      el("td", { class: "behind num" }, gap(r.behind_ns, r.rank)),
      el("td", { class: "uncertainty num" }, `±${ms(r.uncertainty_ns, 2)}`),
      el(
        "td",
        {},
        flagChips(r.flags),
        settle && r.flags.includes("tie") ? giveFloor(r.player) : null,
      ),
    ),
  );
  $("ranking").tBodies[0].replaceChildren(...rows);
  $("ranking-empty").hidden = rows.length > 0;
  const refused = (round.refused || []).map((r) =>
    el("tr", { dataset: { player: r.player } }, el("td", { class: "name" }, r.name), el("td", {}, flagChips(r.flags))),
  );
  $("refused").tBodies[0].replaceChildren(...refused);
  $("refused-block").hidden = refused.length === 0;
}

function age(ns) {
  if (ns === null || ns === undefined || !latest) return "never";
  const seconds = (latest.hub_ns - ns) / 1e9 + (performance.now() - receivedAt) / 1000;
  if (seconds < 2) return "just now";
  if (seconds < 120) return `${Math.floor(seconds)} s ago`;
  return `${Math.floor(seconds / 60)} min ago`;
}

function renderRoster() {
  if (!latest) return;
  const players = [...latest.players].sort((a, b) => Number(b.online) - Number(a.online) || a.name.localeCompare(b.name));
  const rows = players.map((pl) =>
    el(
      "tr",
      { dataset: { player: pl.id, online: pl.online, synced: pl.synced }, class: pl.online ? null : "offline" },
      el(
        "td",
        { class: "name" },
        pl.name,
        pl.team ? el("span", { class: "team" }, pl.team) : null,
        // presses that claimed an earlier instant than the link explains: a liar, or a link in trouble
        pl.clamped ? el("span", { class: "chip chip-clamped", title: "presses claimed earlier than the link can explain" }, `clamped ×${pl.clamped}`) : null,
      ),
      el("td", {}, pl.input),
      el("td", {}, el("span", { class: `dot ${pl.online ? "on" : "off"}` }), pl.online ? (pl.synced ? "online" : "online, syncing") : "offline"),
      el("td", { class: "num" }, ms(pl.rtt_ns, 2)),
      el("td", { class: "num" }, pl.uncertainty_ns === null ? "–" : `±${ms(pl.uncertainty_ns, 2)}`),
      el("td", { class: "seen" }, age(pl.last_seen_ns)),
    ),
  );
  $("roster").tBodies[0].replaceChildren(...rows);
  $("roster-empty").hidden = rows.length > 0;
  const online = players.filter((pl) => pl.online).length;
  $("roster-count").textContent = `${online} online of ${players.length}`;
}

function renderHistory(history) {
  const items = history.slice(0, 10).map((round) => {
    const order = round.results
      .slice(0, 5)
      .map((r) => (r.rank === 1 ? `${r.name} (${ms(r.reaction_ns, 1)})` : `${r.name} ${gap(r.behind_ns, r.rank)}`))
      .join(", ");
    return el(
      "li",
      { dataset: { round: round.number } },
      el("span", { class: "label" }, `Round ${round.number}`),
      " ",
      order || "no presses",
    );
  });
  $("history").replaceChildren(...items);
  $("history-empty").hidden = items.length > 0;
}

// "Last seen" ages move on between pictures.
setInterval(renderRoster, 1000);

showMute();
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) {
  signIn(saved);
} else {
  showLink($("link"), "refused", "Not signed in");
  showSignIn("");
}
