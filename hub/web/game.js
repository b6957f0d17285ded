// The console's game controls: rulings (right, wrong, rebound), the floor and its timers, teams
// and scores. Like the rest of the console it keeps no game rules: it sends host commands and
// draws the hub's `state.game`; scores live in the hub, so a reload shows them unchanged.

import { el } from "/common.js";

const $ = (id) => document.getElementById(id);

let send = () => false;
let chime = () => {};
let game = null; // the last state.game
let hubNs = 0; // the state's hub_ns, and when it arrived, to count the timers down
let receivedAt = 0;
let optionsKey = "";

/** Wire the controls; `sendCommand(message)` sends to the hub, `sound(kind)` plays a beep. */
export function setupGame(sendCommand, sound) {
  send = sendCommand;
  chime = sound;
  const rule = (type, mode) => (event) => {
    ruling(type, mode);
    if (event.detail > 0) event.currentTarget.blur(); // Space must keep arming, not re-click
  };
  $("right").addEventListener("click", rule("right"));
  $("wrong").addEventListener("click", rule("wrong"));
  $("wrong-next").addEventListener("click", rule("wrong", "next"));
  $("wrong-rearm").addEventListener("click", rule("wrong", "rearm"));
  $("score-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const points = Number.parseInt($("score-points").value, 10);
    const target = $("score-target").value;
    if (!Number.isFinite(points) || !target) return;
    const [kind, id] = [target.slice(0, 2), target.slice(2)];
    send({ type: "score", points, ...(kind === "p:" ? { player: id } : { team: id }) });
    $("score-points").value = "";
  });
  $("team-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const player = $("team-player").value;
    if (!player) return;
    send({ type: "team", player, team: $("team-name").value.trim() || null });
    $("team-name").value = "";
  });
  $("clear-scores").addEventListener("click", () => {
    if (window.confirm("Start a new game? Every score goes back to zero.")) {
      send({ type: "clear_scores" });
    }
  });
  setInterval(renderClocks, 100);
}

/** Y and N on the keyboard: right and wrong (the configured rebound). */
export function gameKey(key) {
  if (key === "y") ruling("right");
  else if (key === "n") ruling("wrong");
  else return false;
  return true;
}

function ruling(type, mode) {
  const message = { type };
  if (mode) message.mode = mode;
  const points = Number.parseInt($("ruling-points").value, 10);
  if (Number.isFinite(points)) message.points = points;
  if (send(message)) $("ruling-points").value = "";
}

/** Messages besides `state`: rulings, timer stages and refusals, shown and (timers) beeped. */
export function gameMessage(message) {
  if (message.type === "timer") {
    notice(message.text, message.stage);
    chime(message.stage === "warning" ? "warning" : "expired");
  } else if (message.type === "ruling") {
    notice(`${message.name}: ${message.text}`, message.correct ? "right" : "wrong");
  } else if (message.type === "error") {
    notice(message.message, "error");
  }
}

function notice(text, kind) {
  const box = $("notice");
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = false;
}

export function renderGame(state) {
  game = state.game;
  hubNs = state.hub_ns;
  receivedAt = performance.now();
  if (!game) return;
  $("question-number").textContent = `#${game.question}`;
  const answering = $("answering");
  const floor = game.answering;
  answering.dataset.player = floor ? floor.player : "";
  answering.textContent = floor ? `${floor.name}${floor.team ? ` (${floor.team})` : ""}` : "nobody";
  const ruled = Boolean(floor);
  for (const id of ["right", "wrong", "wrong-next"]) $(id).disabled = !ruled;
  $("wrong-rearm").disabled = !(ruled || state.round.state === "decided");
  const rules = game.rules;
  const parts = [
    rules.rebound === "next" ? "wrong answers pass to the next in line" : "wrong answers re-arm for the others",
    rules.one_buzz_per_team ? "one buzz per team" : null,
    rules.lockout_ns === null ? "early buzz: out until the next arm" : `early buzz: out for ${rules.lockout_ns / 1e6} ms`,
    `right ${signed(rules.points_right)}, wrong ${signed(rules.points_wrong)}`,
  ];
  $("rules-line").textContent = parts.filter(Boolean).join(" · ");
  const out = [...game.out.players.map((id) => nameOf(state, id)), ...game.out.teams.map((t) => `team ${t}`)];
  $("out-line").textContent = out.length ? `Out of this question: ${out.join(", ")}` : "";
  renderScores(state);
  renderChoices(state);
  renderClocks();
}

function signed(points) {
  return points > 0 ? `+${points}` : String(points);
}

function nameOf(state, id) {
  const player = state.players.find((p) => p.id === id);
  return player ? player.name : id;
}

function renderScores(state) {
  const teams = game.teams.filter((t) => t.members.length || t.points);
  $("team-scores").hidden = teams.length === 0;
  $("team-scores").tBodies[0].replaceChildren(
    ...[...teams]
      .sort((a, b) => b.points - a.points || a.team.localeCompare(b.team))
      .map((t) =>
        el(
          "tr",
          { dataset: { team: t.team, points: t.points } },
          el("td", { class: "name" }, t.team),
          el("td", { class: "members" }, t.members.map((m) => m.name).join(", ")),
          el("td", { class: "num points" }, t.points),
        ),
      ),
  );
  const rows = game.scores.players.map((row) =>
    el(
      "tr",
      { dataset: { player: row.id, points: row.points } },
      el("td", { class: "name" }, row.name),
      el("td", {}, row.team || ""),
      el("td", { class: "num points" }, row.points),
    ),
  );
  $("player-scores").tBodies[0].replaceChildren(...rows);
  $("scores-empty").hidden = rows.length > 0 || teams.some((t) => t.points);
}

/** The target and player lists, rebuilt only when their contents change (a rebuild would close
 * a list the host has open, and pictures come up to 20 times a second). */
function renderChoices(state) {
  const players = [...state.players].sort((a, b) => a.name.localeCompare(b.name));
  const teams = game.teams.map((t) => t.team);
  const key = JSON.stringify([players.map((p) => [p.id, p.name]), teams]);
  if (key === optionsKey) return;
  optionsKey = key;
  const keep = (select, options) => {
    const before = select.value;
    select.replaceChildren(...options);
    if ([...select.options].some((o) => o.value === before)) select.value = before;
  };
  keep($("score-target"), [
    ...teams.map((t) => el("option", { value: `t:${t}` }, `team ${t}`)),
    ...players.map((p) => el("option", { value: `p:${p.id}` }, p.name)),
  ]);
  keep($("team-player"), players.map((p) => el("option", { value: p.id }, p.name)));
  $("team-names").replaceChildren(...teams.map((t) => el("option", { value: t })));
}

function hubNow() {
  return hubNs + (performance.now() - receivedAt) * 1e6;
}

function renderClocks() {
  if (!game) return;
  const now = hubNow();
  const answer = $("answer-clock");
  const deadline = game.answer_deadline_ns;
  answer.hidden = deadline === null;
  if (deadline !== null) {
    const left = Math.max(0, deadline - now);
    answer.textContent = left > 0 ? `${(left / 1e9).toFixed(1)} s to answer` : "time is up";
    const warning = game.answer_warning_ns;
    answer.dataset.stage = left <= 0 ? "expired" : warning !== null && now >= warning ? "warning" : "running";
  }
  const buzz = $("buzz-clock");
  const closes = game.buzz_deadline_ns;
  buzz.hidden = closes === null;
  if (closes !== null) buzz.textContent = `${(Math.max(0, closes - now) / 1e9).toFixed(1)} s to buzz`;
}
