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

const link = new HubLink({
  hello: { role: "viewer", name: "big screen" },
  onState: render,
  onStatus: (state, text) => {
    showLink($("link"), state, text);
    // On the projector a healthy link needs no words; only trouble is shown.
    $("link").hidden = state === "live";
  },
  onRefused: () => {},
});
link.start();
