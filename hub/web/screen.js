// The big-screen scoreboard: a read-only viewer, sized to be read from the back of a hall.

import { HubLink, el, gap, ms, showLink } from "/common.js";

const $ = (id) => document.getElementById(id);
const HEADLINES = { idle: "Get ready", armed: "Buzz!", decided: "", closed: "Round closed" };
const PLACES = 8; // more names than this no longer read from the back row

/** The runner-up is within the two presses' combined uncertainty of the winner. */
function tiedWithWinner(first, second) {
  if (first.flags.includes("tie")) return true;
  if (!second || !second.flags.includes("tie")) return false;
  return second.behind_ns <= (first.uncertainty_ns || 0) + (second.uncertainty_ns || 0);
}

function render(state) {
  const round = state.round;
  $("round-number").textContent = String(round.number);
  const headline = $("headline");
  headline.dataset.state = round.state;
  const first = round.results.find((r) => r.rank === 1);
  const decided = round.state !== "armed" && first !== undefined;
  headline.textContent = decided ? "" : HEADLINES[round.state] ?? round.state;
  headline.hidden = decided;
  $("winner").hidden = !decided;
  if (decided) {
    $("winner-name").textContent = first.name;
    const tie = tiedWithWinner(first, round.results.find((r) => r.rank === 2)) ? " · tie!" : "";
    $("winner-detail").textContent = `first · reaction ${ms(first.reaction_ns, 0)}${tie}`;
  }
  const rows = decided ? round.results.filter((r) => r.rank !== 1).slice(0, PLACES - 1) : [];
  $("order").replaceChildren(
    ...rows.map((r) =>
      el(
        "li",
        { dataset: { player: r.player } },
        el("span", { class: "place" }, r.rank),
        el("span", { class: "name" }, r.name),
        el("span", { class: "behind" }, gap(r.behind_ns, r.rank), r.flags.includes("tie") ? " tie" : ""),
      ),
    ),
  );
}

// --- game play: who is answering, the countdowns, the scores ---

let game = null;
let hubNs = 0;
let receivedAt = 0;
const SCORE_ROWS = 8;

function renderGame(state) {
  game = state.game;
  hubNs = state.hub_ns;
  receivedAt = performance.now();
  if (!game) return;
  const floor = game.answering;
  $("floor").hidden = !floor;
  if (floor) $("floor-name").textContent = `${floor.name} to answer`;
  const teams = game.scores.teams;
  const rows = teams.length ? teams.map((t) => [t.id, t.id, t.points]) : game.scores.players.map((p) => [p.id, p.name, p.points]);
  $("scores").hidden = rows.length === 0;
  $("scores").replaceChildren(
    ...rows.slice(0, SCORE_ROWS).map(([id, name, points]) =>
      el("span", { class: "score", dataset: { id, points } }, el("span", { class: "name" }, name), " ", el("b", {}, points)),
    ),
  );
  renderClocks();
}

function renderClocks() {
  if (!game) return;
  const now = hubNs + (performance.now() - receivedAt) * 1e6;
  const deadline = game.answer_deadline_ns;
  const clock = $("floor-clock");
  clock.hidden = deadline === null;
  if (deadline !== null) {
    const left = Math.max(0, deadline - now);
    clock.textContent = left > 0 ? (left / 1e9).toFixed(1) : "time!";
    const warning = game.answer_warning_ns;
    clock.dataset.stage = left <= 0 ? "expired" : warning !== null && now >= warning ? "warning" : "running";
  }
  const closes = game.buzz_deadline_ns;
  $("buzz-clock").hidden = closes === null;
  if (closes !== null) $("buzz-clock").textContent = (Math.max(0, closes - now) / 1e9).toFixed(1);
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
