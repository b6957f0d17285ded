// The big-screen scoreboard: a read-only viewer, sized to be read from the back of a hall.

import { HubLink, el, gap, ms, showLink } from "/common.js";

const $ = (id) => document.getElementById(id);
const HEADLINES = { idle: "Get ready", armed: "Buzz!", decided: "", closed: "Round closed" };
const PLACES = 6; // more names than this no longer read from the back row
const SOLO_SHOWN = 12;

let game = null;
let hubNs = 0;
let receivedAt = 0;

/** The runner-up is within the two presses' combined uncertainty of the winner. */
function tiedWithWinner(first, second) {
  if (first.flags.includes("tie")) return true;
  if (!second || !second.flags.includes("tie")) return false;
  return second.behind_ns <= (first.uncertainty_ns || 0) + (second.uncertainty_ns || 0);
}

function isOut(row) {
  return game !== null && (game.out.players.includes(row.player) || (row.team !== null && game.out.teams.includes(row.team)));
}

/** The standing ruling of the question on, if it was right: the screen says who got it. */
function rightAnswer() {
  if (!game || !game.log.length) return null;
  const question = game.log[game.log.length - 1];
  if (question.number !== game.question) return null;
  return question.answers.find((a) => !a.undone && (a.kind === "right" || a.kind === "power")) || null;
}

function deadQuestion() {
  if (!game || !game.log.length) return null;
  const question = game.log[game.log.length - 1];
  return question.number === game.question ? question.dead : null;
}

function render(state) {
  const round = state.round;
  game = state.game || null;
  $("round-number").textContent = String(round.number);
  $("question-number").textContent = game && game.question ? String(game.question) : "–";
  const match = game && game.match;
  $("match-name").textContent = match ? `Match ${match.number}: ${match.name}` : "";
  const first = round.results.find((r) => r.rank === 1);
  // A winner ruled wrong is no longer the one the room should look at.
  const showWinner = round.state === "decided" && first !== undefined && !isOut(first);
  let headline = HEADLINES[round.state] ?? round.state;
  let look = round.state;
  const right = round.state === "closed" ? rightAnswer() : null;
  const dead = round.state === "closed" ? deadQuestion() : null;
  if (game && game.bonus) [headline, look] = ["Bonus", "bonus"];
  else if (right) [headline, look] = [`Right: ${right.name}`, "right"];
  else if (dead) [headline, look] = [match && match.format.name === "quizbowl" ? "Dead tossup" : "Nobody got it", "dead"];
  else if (round.state === "decided" && !showWinner) [headline, look] = [game && game.answering ? "" : "Over to the host", "decided"];
  const headlineBox = $("headline");
  headlineBox.dataset.state = look;
  headlineBox.textContent = showWinner ? "" : headline;
  headlineBox.hidden = showWinner || headline === "";
  $("winner").hidden = !showWinner;
  if (showWinner) {
    $("winner-name").textContent = first.name;
    const tie = tiedWithWinner(first, round.results.find((r) => r.rank === 2)) ? " · tie!" : "";
    $("winner-detail").textContent = `first · reaction ${ms(first.reaction_ns, 0)}${tie}`;
  }
  renderOrder(round, showWinner);
}

function renderOrder(round, showWinner) {
  const decided = round.state !== "armed" && round.results.length > 0 && !(game && game.bonus);
  const all = decided ? round.results.filter((r) => !showWinner || r.rank !== 1) : [];
  const rows = all.slice(0, PLACES - 1).map((r) =>
    el(
      "li",
      { dataset: { player: r.player, out: isOut(r) } },
      el("span", { class: "place" }, r.rank),
      el("span", { class: "name" }, r.name),
      el("span", { class: "behind" }, gap(r.behind_ns, r.rank), r.flags.includes("tie") ? " tie" : ""),
    ),
  );
  if (all.length > PLACES - 1) rows.push(el("li", { class: "more" }, `+${all.length - (PLACES - 1)} more`));
  $("order").replaceChildren(...rows);
}

// --- game play: who is answering, the countdowns, the scores ---

function renderGame(state) {
  hubNs = state.hub_ns;
  receivedAt = performance.now();
  if (!game) return;
  const floor = game.answering;
  $("floor").hidden = !floor;
  if (floor) $("floor-name").textContent = `${floor.name} to answer`;
  renderEligible(state);
  renderBonus();
  renderScores(state);
  renderClocks();
}

function renderEligible(state) {
  const box = $("eligible");
  const rebound = state.round.state === "armed" && (game.out.players.length > 0 || game.out.teams.length > 0);
  box.hidden = !rebound;
  if (!rebound) return;
  const teams = game.teams.filter((t) => t.members.length && !game.out.teams.includes(t.team)).map((t) => t.team);
  box.textContent = teams.length ? `${teams.join(" and ")} may buzz` : "The others may buzz";
}

function renderBonus() {
  const bonus = game.bonus;
  $("bonus").hidden = !bonus;
  if (!bonus) return;
  const question = game.log[game.log.length - 1];
  const answers = question && question.bonus ? question.bonus.answers.filter((a) => !a.undone) : [];
  const marks = [];
  for (let i = 0; i < bonus.parts; i += 1) marks.push(i < answers.length ? String(answers[i].points) : "–");
  $("bonus-text").textContent = `${bonus.team} · part ${bonus.part} of ${bonus.parts} · ${marks.join(" / ")}`;
}

function renderScores(state) {
  const box = $("scores");
  const points = game.points.players;
  const answering = game.answering ? game.answering.player : null;
  const names = new Map(state.players.map((p) => [p.id, p.name]));
  for (const row of game.scores.players) names.set(row.id, row.name);
  const placed = new Set(game.teams.flatMap((t) => t.members.map((m) => m.id)));
  const solo = [...names.keys()]
    .filter((id) => !placed.has(id))
    .sort((a, b) => (points[b] ?? 0) - (points[a] ?? 0) || names.get(a).localeCompare(names.get(b)));
  let blocks;
  if (game.teams.length) {
    // Every team, 0 points included, in the match's order; the players without a team below.
    blocks = game.teams.map((team) =>
      el(
        "div",
        {
          class: "score",
          dataset: {
            id: team.team,
            points: team.points,
            answering: team.members.some((m) => m.id === answering),
            out: game.out.teams.includes(team.team),
          },
        },
        el("span", { class: "name" }, team.team),
        el("b", {}, team.points),
        el("span", { class: "members" }, team.members.map((m) => `${m.name} ${points[m.id] ?? 0}`).join(" · ")),
      ),
    );
    if (solo.length) {
      blocks.push(
        el(
          "div",
          { class: "solo" },
          ...solo.slice(0, SOLO_SHOWN).map((id) => el("span", { dataset: { id } }, `${names.get(id)} `, el("b", {}, points[id] ?? 0))),
          solo.length > SOLO_SHOWN ? el("span", {}, `+${solo.length - SOLO_SHOWN} more`) : null,
        ),
      );
    }
  } else {
    blocks = solo.slice(0, 8).map((id) =>
      el("div", { class: "score", dataset: { id, points: points[id] ?? 0, answering: id === answering } }, el("span", { class: "name" }, names.get(id)), el("b", {}, points[id] ?? 0)),
    );
  }
  box.hidden = blocks.length === 0;
  box.replaceChildren(...blocks);
}

function countdown(id, deadline, warning, expired = "time!") {
  const clock = $(id);
  clock.hidden = deadline === null || deadline === undefined;
  if (clock.hidden) return;
  const now = hubNs + (performance.now() - receivedAt) * 1e6;
  const left = Math.max(0, deadline - now);
  clock.textContent = left > 0 ? (left / 1e9).toFixed(1) : expired;
  clock.dataset.stage = left <= 0 ? "expired" : warning !== null && warning !== undefined && now >= warning ? "warning" : "running";
}

function renderClocks() {
  if (!game) return;
  countdown("floor-clock", game.answer_deadline_ns, game.answer_warning_ns);
  countdown("buzz-clock", game.buzz_deadline_ns, null);
  countdown("bonus-clock", game.bonus ? game.bonus.deadline_ns : null, null);
}

setInterval(renderClocks, 100);

// The QR code is made by the hub from the address this screen used (the img request's Host), so
// phones in the room reach the same hub; the address is also printed for those who type it.
$("join-url").textContent = `${location.host}/play`;

// A screen opened on the hub itself (localhost) would show a code phones cannot use: say so, and
// show the code of the hub's LAN address instead (the hub lists its addresses in /api/join).
fetch("/api/join")
  .then((response) => (response.ok ? response.json() : null))
  .then((join) => {
    if (!join || !join.loopback) return;
    const warning = $("join-warning");
    if (join.lan.length) {
      const url = join.lan[0];
      $("join").querySelector("img").src = `/play.svg?host=${encodeURIComponent(new URL(url).host)}`;
      $("join-url").textContent = url.replace(/^https?:\/\//, "");
      warning.textContent = `This screen was opened on the hub itself (${location.host}), an address phones cannot use: the code shows ${url} instead.`;
    } else {
      warning.textContent = `This screen was opened on the hub itself (${location.host}) and the hub has no network address: phones cannot join until it is on the network.`;
    }
    warning.hidden = false;
  })
  .catch(() => {});

function renderJoin(state) {
  $("join").hidden = !(state.join && state.join.browser_players);
}

const link = new HubLink({
  hello: { role: "viewer", name: "big screen" },
  onState: (state) => {
    render(state);
    renderGame(state);
    renderJoin(state);
  },
  onStatus: (state, text) => {
    showLink($("link"), state, text);
    // On the projector a healthy link needs no words; only trouble is shown.
    $("link").hidden = state === "live";
  },
  onRefused: () => {},
});
link.start();
