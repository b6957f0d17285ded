// The host console: sign in with the host token, run matches and rounds, watch presses arrive.
// Everything shown comes from the hub's `state` pictures; this page keeps no game rules.

import { HubLink, el, flagChips, gap, ms, showLink } from "/common.js";
import { gameKey, gameMessage, guard, renderGame, setupGame } from "/game.js";

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
  $("match-button").hidden = true;
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
        $("match-button").hidden = false;
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

function send(message) {
  return Boolean(link && link.send(message));
}

/** Arm, close and reset: in a match they could throw away a floor or a bonus, so a first
 * press asks (the hub refuses an arm without `force` too). */
function roundCommand(type) {
  guard(type, (force) => send(force && type === "arm" ? { type, force: true } : { type }));
}

for (const type of ["arm", "reset", "close"]) {
  $(type).addEventListener("click", (event) => {
    roundCommand(type);
    // A mouse click must not leave focus on the button: Space would then press it again
    // instead of arming. Keyboard users (detail 0) keep their focus.
    if (event.detail > 0) event.currentTarget.blur();
  });
}

// Let /play pages join, or turn them away (those already in are dropped with a message).
$("browser-players").addEventListener("change", (event) => {
  if (!send({ type: "players", browser: event.currentTarget.checked })) {
    event.currentTarget.checked = !event.currentTarget.checked;
  }
});

document.addEventListener("keydown", (event) => {
  if (event.repeat) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  const target = event.target;
  // In the points box, Y, N and P rule with the number typed: the box must not swallow them.
  if (target instanceof HTMLInputElement && target.id === "ruling-points") {
    if (["y", "n", "p"].includes(key) && gameKey(key)) {
      event.preventDefault();
      target.blur();
    }
    return;
  }
  if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement) return;
  if (target instanceof HTMLTextAreaElement || $("match-dialog").open) return;
  // Space and Enter on a focused button are that button's own click.
  if (target instanceof HTMLButtonElement && (key === " " || key === "enter")) return;
  if (key === "m") {
    toggleMute();
  } else if ($("console").hidden) {
    return;
  } else if (key === "a" || key === " ") {
    roundCommand("arm");
  } else if (key === "r") {
    roundCommand("reset");
  } else if (key === "c") {
    roundCommand("close");
  } else if (!gameKey(key)) {
    return;
  }
  event.preventDefault();
});

// --- sound: armed on load where the browser allows it, else one click turns it on ---

function startAudio() {
  if (!audio && window.AudioContext) audio = new AudioContext();
  if (audio && audio.state === "suspended") audio.resume().then(showSound, showSound);
  showSound();
}

function showSound() {
  document.body.dataset.sound = audio && audio.state === "running" ? "on" : "off";
}

for (const kind of ["pointerdown", "keydown"]) {
  document.addEventListener(kind, startAudio, { capture: true });
}
$("sound").addEventListener("click", startAudio);

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

function tone(pitch, offset, length, level) {
  const start = audio.currentTime + offset;
  const oscillator = audio.createOscillator();
  const gain = audio.createGain();
  oscillator.frequency.value = pitch;
  gain.gain.setValueAtTime(level, start);
  gain.gain.exponentialRampToValueAtTime(0.001, start + length);
  oscillator.connect(gain).connect(audio.destination);
  oscillator.start(start);
  oscillator.stop(start + length + 0.05);
}

/** A short two-tone chime at the first buzz; counted in data-beeps so it can be checked. */
function beep() {
  beeps += 1;
  document.body.dataset.beeps = String(beeps);
  if (muted() || !audio || audio.state !== "running") return;
  tone(880, 0, 0.25, 0.25);
  tone(1320, 0.12, 0.25, 0.25);
}

/** The timers' beeps: a short tone for a warning, a long low one when time is up; counted in
 * data-timer-beeps. */
function timerBeep(kind) {
  const count = Number(document.body.dataset.timerBeeps || "0") + 1;
  document.body.dataset.timerBeeps = String(count);
  document.body.dataset.lastTimerBeep = kind;
  if (muted() || !audio || audio.state !== "running") return;
  if (kind === "warning") tone(660, 0, 0.15, 0.3);
  else tone(330, 0, 0.7, 0.3);
}

setupGame(send, timerBeep);

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
  if (round.number === 0) detail = "No question yet: press Arm.";
  else if (round.state === "armed") detail = round.results.length ? "Deciding…" : "Waiting for the first buzz.";
  else if (round.winner) detail = `${round.winner} buzzed first.`;
  else if (round.state === "closed") detail = "Closed: buzzes do not count until the next question.";
  else detail = "Ready: press Arm for the next question.";
  $("round-detail").textContent = detail;
  $("round-detail").title = round.adjudication_wait_ns === null || round.adjudication_wait_ns === undefined
    ? ""
    : `The hub waited ${ms(round.adjudication_wait_ns, 1)} after the first buzz arrived, in case an earlier one was still on its way.`;
}

const WHY = {
  early: "pressed before the light",
  locked: "locked out (an early press, or out of this question)",
  closed: "pressed after the question was over",
  stale: "belongs to an earlier round",
  repeat: "already counted",
};

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
    el(
      "tr",
      { dataset: { player: r.player } },
      el("td", { class: "name" }, r.name),
      el("td", {}, flagChips(r.flags), " ", r.flags.map((flag) => WHY[flag]).filter(Boolean).join("; ")),
    ),
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
        pl.team ? el("span", { class: "team-tag" }, pl.team) : null,
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
startAudio();
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) {
  signIn(saved);
} else {
  showLink($("link"), "refused", "Not signed in");
  showSignIn("");
}
