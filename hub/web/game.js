// The console's game: the question card (who buzzed, who answers, the timers, the rulings, the
// bonus), the scores, the game log and matches. Like the rest of the console it keeps no game
// rules: it sends host commands and draws the hub's `state.game`. The hub refuses what would
// throw away a floor; the console asks first, so the host hears why before anything is lost.

import { el, gap } from "/common.js";

const $ = (id) => document.getElementById(id);
const CONFIRM_MS = 5000; // a second press within this long confirms

let send = () => false;
let chime = () => {};
let state = null; // the last state picture
let game = null; // its game
let hubNs = 0; // the state's hub_ns, and when it arrived, to count the timers down
let receivedAt = 0;
let optionsKey = "";
let pending = null; // a command waiting for its confirming second press: {type, stake, until}
let shownQuestion = null; // the question the notice speaks of

/** Wire the controls; `sendCommand(message)` sends to the hub, `sound(kind)` plays a beep. */
export function setupGame(sendCommand, sound) {
  send = sendCommand;
  chime = sound;
  const click = (action) => (event) => {
    action();
    if (event.detail > 0) event.currentTarget.blur(); // Space must keep arming, not re-click
  };
  $("right").addEventListener("click", click(() => gameKey("y")));
  $("power").addEventListener("click", click(() => gameKey("p")));
  $("wrong").addEventListener("click", click(() => gameKey("n")));
  $("read").addEventListener("click", click(() => gameKey("q")));
  $("undo").addEventListener("click", click(() => gameKey("u")));
  $("wrong-next").addEventListener("click", click(() => ruling("wrong", { mode: "next" })));
  $("wrong-rearm").addEventListener("click", click(() => ruling("wrong", { mode: "rearm" })));
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
    if (window.confirm("Start a new game? Every score goes back to zero.")) send({ type: "clear_scores" });
  });
  $("wager").addEventListener("submit", (event) => {
    event.preventDefault();
    const points = Number.parseInt($("wager-points").value, 10);
    const player = $("wager-player").value;
    if (!Number.isFinite(points) || !player) return;
    const correct = event.submitter && event.submitter.value === "right";
    if (send({ type: "wager", player, points, correct })) $("wager-points").value = "";
  });
  setupMatchDialog();
  setInterval(renderClocks, 100);
}

/** The game's keys: Y right, P power, N wrong, Q question read, U undo. While a bonus is
 * played, Y and N rule its next part. Returns whether the key was one of them. */
export function gameKey(key) {
  if (!game) return false;
  const bonus = game.bonus;
  if (key === "y") {
    if (bonus) send({ type: "bonus", points: bonus.part_value });
    else ruling("right");
  } else if (key === "n") {
    if (bonus) send({ type: "bonus", points: 0 });
    else ruling("wrong");
  } else if (key === "p") {
    if (!bonus) ruling("right", { power: true });
  } else if (key === "q") {
    send({ type: "read" });
  } else if (key === "u") {
    send({ type: "undo" });
  } else {
    return false;
  }
  return true;
}

function ruling(type, extra = {}) {
  const message = { type, ...extra };
  const points = Number.parseInt($("ruling-points").value, 10);
  if (Number.isFinite(points)) message.points = points;
  if (send(message)) $("ruling-points").value = "";
}

/** What a round command would throw away now, in words; null if nothing. */
function atStake() {
  if (!game || !game.match) return null;
  if (game.answering) return `${game.answering.name} has the floor`;
  if (game.bonus) return `the bonus for ${game.bonus.team} is not scored`;
  return null;
}

/** Arm, close or reset: at once if nothing is at stake, else on a second press. */
export function guard(type, act) {
  const stake = atStake();
  const now = performance.now();
  if (stake === null) {
    pending = null;
    showConfirm("");
    act(false);
    return;
  }
  if (pending && pending.type === type && pending.stake === stake && now < pending.until) {
    pending = null;
    showConfirm("");
    act(true);
    return;
  }
  pending = { type, stake, until: now + CONFIRM_MS };
  const key = { arm: "A", close: "C", reset: "R" }[type];
  const what = { arm: "arm the next question", close: "close the round", reset: "reset" }[type];
  showConfirm(`${stake}. Press ${key} again to ${what} anyway (parts not scored count 0), or rule first.`);
}

function showConfirm(text) {
  $("confirm").textContent = text;
  $("confirm").hidden = !text;
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
  box.hidden = !text;
}

// --- drawing the picture ---

export function renderGame(picture) {
  state = picture;
  game = picture.game;
  hubNs = picture.hub_ns;
  receivedAt = performance.now();
  if (!game) return;
  if (game.question !== shownQuestion) {
    shownQuestion = game.question;
    notice("", ""); // what was said about the last question is not news for this one
  }
  if (pending && atStake() !== pending.stake) {
    pending = null; // what was at stake is gone (ruled, scored): a new press asks afresh
    showConfirm("");
  }
  renderTitle();
  renderQuestion();
  renderScores();
  renderLog();
  renderChoices();
  renderClocks();
}

/** A player's name: as the match prints it, else as the station gave it. */
function nameOf(id) {
  for (const team of game.teams) {
    const member = team.members.find((m) => m.id === id);
    if (member) return member.name;
  }
  const player = state.players.find((p) => p.id === id);
  return player ? player.name : id;
}

function teamOf(id) {
  const team = game.teams.find((t) => t.members.some((m) => m.id === id));
  return team ? team.team : null;
}

function signed(points) {
  return points > 0 ? `+${points}` : String(points);
}

function current() {
  return game.log.length ? game.log[game.log.length - 1] : null;
}

function renderTitle() {
  const match = game.match;
  const title = $("match-title");
  const button = $("match-button");
  if (match) {
    title.replaceChildren(
      el("b", {}, `Match ${match.number}: ${match.name}`),
      ` · ${match.format.title}${match.packet ? ` · ${match.packet}` : ""}`,
    );
    button.textContent = "End match";
  } else {
    title.textContent = "Free play (no match)";
    button.textContent = "New match";
  }
}

function phaseOf(question) {
  const round = state.round;
  if (game.bonus) return ["bonus", "Bonus"];
  if (question && question.dead && round.state !== "armed") return ["dead", question.dead === "time" ? "Dead: time" : "Dead"];
  if (game.answering) return ["answering", "Answering"];
  if (round.state === "armed") return ["buzz", game.read ? "Buzz! (read)" : "Reading · buzz!"];
  if (round.state === "decided") return ["waiting", "Nobody left in line"];
  if (round.number === 0) return ["waiting", "Waiting"];
  return ["over", "Over"];
}

function renderQuestion() {
  const question = current();
  const total = game.match && game.match.format.questions;
  $("question-number").textContent = game.question ? (total ? `${game.question} of ${total}` : `${game.question}`) : "–";
  const [phase, label] = phaseOf(question);
  $("phase").dataset.phase = phase;
  $("phase").textContent = label;
  $("value").hidden = game.value === null;
  $("value").textContent = game.value === null ? "" : `Clue ${game.value}`;
  const floor = game.answering;
  const answering = $("answering");
  answering.dataset.player = floor ? floor.player : "";
  answering.textContent = floor ? `${floor.name}${floor.team ? ` (${floor.team})` : ""}` : "nobody";
  renderBuzzes();
  renderEligible();
  renderBonus();
  const defaults = game.defaults || { right: null, power: null, wrong: null };
  const ruled = Boolean(floor);
  setButton("right", ruled && !game.bonus, defaults.right);
  setButton("power", ruled && !game.bonus && defaults.power !== null, defaults.power);
  setButton("wrong", ruled && !game.bonus, defaults.wrong);
  if (game.bonus) {
    setButton("right", true, game.bonus.part_value, "Part right");
    setButton("wrong", true, 0, "Part missed");
  }
  $("wrong-next").disabled = !ruled;
  $("wrong-rearm").disabled = !(ruled || state.round.state === "decided");
  $("undo").disabled = !game.undo;
  $("undo").title = game.undo ? `Take back: ${game.undo}` : "Nothing to take back";
  $("read").disabled = !(game.bonus || (game.question > 0 && !game.read && state.round.state !== "closed"));
  $("read").firstChild.textContent = game.bonus ? "Bonus part read " : "Question read ";
  renderValues();
  $("wager").hidden = !(game.match && game.match.format.wagers);
  renderRules();
}

function setButton(id, enabled, points, label) {
  const button = $(id);
  button.disabled = !enabled;
  const words = { right: "Right", power: "Power", wrong: "Wrong" };
  button.firstChild.textContent = `${label || words[id]} `;
  button.querySelector(".pts").textContent = enabled && points !== null && points !== undefined ? signed(points) : "";
}

function renderBuzzes() {
  const round = state.round;
  const out = new Set(game.out.players);
  const items = round.results.slice(0, 8).map((r) =>
    el(
      "li",
      { dataset: { player: r.player, rank: r.rank, out: out.has(r.player) || (r.team && game.out.teams.includes(r.team)) } },
      `${r.rank}. ${r.name}${r.team ? ` (${r.team})` : ""}`,
      r.rank > 1 ? el("span", { class: "gap" }, gap(r.behind_ns, r.rank)) : null,
      r.flags.includes("tie") ? el("span", { class: "chip chip-tie", title: "closer than the hub can tell apart: a tie, decided by the tie rule" }, "tie") : null,
      r.flags.includes("late") ? el("span", { class: "chip chip-late", title: "arrived after the result was announced" }, "late") : null,
    ),
  );
  if (round.results.length > 8) items.push(el("li", {}, `+${round.results.length - 8} more`));
  $("buzzes").replaceChildren(...items);
}

function renderEligible() {
  const line = $("out-line");
  const alone = game.out.players.filter((id) => !game.out.teams.includes(teamOf(id)));
  const outNames = [...alone.map(nameOf), ...game.out.teams.map((t) => `team ${t}`)];
  const parts = [];
  if (state.round.state === "armed" && outNames.length) {
    const teams = game.teams.filter((t) => !game.out.teams.includes(t.team) && t.members.length).map((t) => t.team);
    const who = teams.length ? teams.join(", ") : game.eligible.map(nameOf).join(", ");
    parts.push(el("span", {}, `May buzz: ${who || "nobody"}. `));
  }
  if (outNames.length) parts.push(el("span", { class: "out" }, `Out of this question: ${outNames.join(", ")}`));
  line.replaceChildren(...parts);
}

function renderBonus() {
  const bonus = game.bonus;
  $("bonus").hidden = !bonus;
  if (!bonus) return;
  $("bonus-team").textContent = bonus.team;
  $("bonus-part").textContent = `· part ${bonus.part} of ${bonus.parts}`;
  const question = current();
  const answers = question && question.bonus ? question.bonus.answers.filter((a) => !a.undone) : [];
  const marks = [];
  for (let i = 0; i < bonus.parts; i += 1) marks.push(i < answers.length ? String(answers[i].points) : "–");
  $("bonus-parts").textContent = marks.join(" / ");
}

function renderValues() {
  const values = game.match ? game.match.format.values : [];
  const box = $("values");
  box.hidden = values.length === 0;
  const key = JSON.stringify([values, game.value]);
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(
    "Clue value:",
    ...values.map((value) => {
      const button = el("button", { type: "button", class: "small", "aria-pressed": String(value === game.value) }, value);
      button.addEventListener("click", () => send({ type: "value", points: value }));
      return button;
    }),
  );
}

function renderRules() {
  const rules = game.rules;
  const fmt = game.match ? game.match.format : null;
  const parts = fmt
    ? [
        fmt.title,
        fmt.values.length ? "clue values" : `right ${signed(fmt.tossup)}`,
        fmt.power !== null ? `power ${signed(fmt.power)}` : null,
        fmt.values.length ? "wrong costs the clue" : `wrong ${signed(fmt.neg)} before the end of the question, ${signed(fmt.wrong)} after`,
        fmt.bonus_parts ? `bonus ${fmt.bonus_parts} × ${fmt.bonus_part}` : null,
        fmt.one_buzz_per_team ? "one buzz per team" : null,
      ]
    : [
        `right ${signed(rules.points_right)}, wrong ${signed(rules.points_wrong)}`,
        rules.rebound === "next" ? "wrong answers pass to the next in line" : "wrong answers re-arm for the others",
      ];
  parts.push(rules.lockout_ns === null ? "early buzz: out until the next question" : `early buzz: out for ${rules.lockout_ns / 1e6} ms`);
  $("rules-line").textContent = parts.filter(Boolean).join(" · ");
}

function renderScores() {
  const answering = game.answering ? game.answering.player : null;
  const points = game.points.players;
  const teams = game.teams.map((team) =>
    el(
      "div",
      { class: "team", dataset: { team: team.team, points: team.points, out: game.out.teams.includes(team.team) } },
      el("div", { class: "head" }, el("span", { class: "name" }, team.team), el("span", { class: "points" }, team.points)),
      el(
        "ul",
        { class: "members" },
        ...team.members.map((m) =>
          el(
            "li",
            { dataset: { player: m.id, answering: m.id === answering } },
            el("span", {}, m.name),
            el("span", { class: "pts" }, points[m.id] ?? 0),
          ),
        ),
      ),
    ),
  );
  $("teams").replaceChildren(...teams);
  // Players in no team: every one the hub knows, so nobody is hidden once teams exist.
  const placed = new Set(game.teams.flatMap((t) => t.members.map((m) => m.id)));
  const solo = [...state.players.map((p) => p.id), ...Object.keys(points)]
    .filter((id, index, all) => !placed.has(id) && all.indexOf(id) === index)
    .sort((a, b) => (points[b] ?? 0) - (points[a] ?? 0) || nameOf(a).localeCompare(nameOf(b)));
  $("solo").replaceChildren(
    ...(solo.length
      ? [
          el("span", { class: "label" }, game.teams.length ? "Without a team: " : "Players: "),
          el(
            "ul",
            {},
            ...solo.map((id) => el("li", { dataset: { player: id, points: points[id] ?? 0 } }, `${nameOf(id)} `, el("span", { class: "points" }, points[id] ?? 0))),
          ),
        ]
      : []),
  );
  $("scores-empty").hidden = teams.length > 0 || solo.length > 0;
}

function entryText(parts, undone, kind) {
  return el("span", { class: `entry${kind ? ` kind-${kind}` : ""}`, dataset: { undone: Boolean(undone) } }, parts);
}

function renderLog() {
  const items = [...game.log].reverse().map((q) => {
    const pieces = [el("span", { class: "q" }, `${q.daily_double ? "DD" : "Q"}${q.number}${q.value ? ` (${q.value})` : ""}`)];
    const firsts = q.buzzes.filter((b) => b.rank === 1 || b.flags.includes("tie"));
    if (!q.answers.length && firsts.length) pieces.push(entryText(`buzz: ${firsts.map((b) => b.name).join(", ")}`, false));
    for (const a of q.answers) {
      const tie = q.buzzes.some((b) => b.player === a.player && b.round === a.round && b.flags.includes("tie")) ? " (tie)" : "";
      pieces.push(entryText(`${a.name} ${a.kind} ${signed(a.points)}${tie}`, a.undone, a.kind));
    }
    if (q.bonus) {
      const parts = q.bonus.answers.filter((p) => !p.undone).map((p) => p.points);
      pieces.push(entryText(`bonus ${q.bonus.team}: ${parts.join("/") || "…"}`, false));
    }
    for (const award of q.awards) {
      const who = award.name || award.team;
      pieces.push(entryText(`${award.wager ? "wager" : "points"} ${who} ${signed(award.points)}${award.reason && !award.wager ? ` (${award.reason})` : ""}`, award.undone));
    }
    if (q.dead) pieces.push(el("span", { class: "entry dead" }, q.dead === "time" ? "dead (time)" : q.dead === "everyone out" ? "dead (everyone out)" : "dead"));
    return el("li", { dataset: { question: q.number } }, ...pieces);
  });
  $("log").replaceChildren(...items);
  $("log-empty").hidden = items.length > 0;
  const exports = $("exports");
  const number = game.match ? game.match.number : game.last_match ? game.last_match.number : null;
  const key = `${number}`;
  if (exports.dataset.key !== key) {
    exports.dataset.key = key;
    exports.replaceChildren(...(number === null ? [] : ["Download: ", ...["qbj", "csv", "json"].map((kind) => exportLink(kind, number))]));
  }
  const last = game.last_match;
  $("last-match").hidden = !last || Boolean(game.match);
  if (last) {
    $("last-match").textContent = `Match ${last.number} (${last.name}) ended: ${last.teams.map((t) => `${t.id} ${t.points}`).join(", ")}`;
  }
}

function exportLink(kind, number) {
  const link = el("a", { href: "#", dataset: { kind } }, kind.toUpperCase());
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    // The host token goes in a header, not in a link anyone could copy from the address bar.
    const token = sessionStorage.getItem("buzzer-beater.host-token") || "";
    const response = await fetch(`/api/match.${kind}?match=${number}`, { headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) {
      notice(`Download failed: ${(await response.text()).trim()}`, "error");
      return;
    }
    const disposition = response.headers.get("Content-Disposition") || "";
    const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || `match-${number}.${kind}`;
    const url = URL.createObjectURL(await response.blob());
    const save = el("a", { href: url, download: name });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
  return link;
}

/** The target and player lists, rebuilt only when their contents change (a rebuild would close
 * a list the host has open, and pictures come up to 20 times a second). */
function renderChoices() {
  const players = state.players.map((p) => ({ id: p.id, name: nameOf(p.id) })).sort((a, b) => a.name.localeCompare(b.name));
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
  keep($("wager-player"), players.map((p) => el("option", { value: p.id }, p.name)));
  $("team-names").replaceChildren(...teams.map((t) => el("option", { value: t })));
}

function hubNow() {
  return hubNs + (performance.now() - receivedAt) * 1e6;
}

function countdown(id, deadline, warning) {
  const clock = $(id);
  clock.hidden = deadline === null || deadline === undefined;
  if (clock.hidden) return;
  const now = hubNow();
  const left = Math.max(0, deadline - now);
  clock.textContent = left > 0 ? `${(left / 1e9).toFixed(1)} s` : "time is up";
  clock.dataset.stage = left <= 0 ? "expired" : warning !== null && warning !== undefined && now >= warning ? "warning" : "running";
}

function renderClocks() {
  if (!game) return;
  countdown("answer-clock", game.answer_deadline_ns, game.answer_warning_ns);
  const answer = $("answer-clock");
  if (!answer.hidden && answer.dataset.stage !== "expired") answer.textContent += " to answer";
  countdown("buzz-clock", game.buzz_deadline_ns, null);
  const buzz = $("buzz-clock");
  if (!buzz.hidden) buzz.textContent = `${buzz.textContent} to buzz`;
  countdown("bonus-clock", game.bonus ? game.bonus.deadline_ns : null, null);
}

// --- matches ---

function setupMatchDialog() {
  const dialog = $("match-dialog");
  $("match-button").addEventListener("click", () => {
    if (game && game.match) {
      const m = game.match;
      if (window.confirm(`End match ${m.number} (${m.name})? Its result is final and saved.`)) send({ type: "match_end" });
      return;
    }
    openMatchDialog();
  });
  $("match-add-team").addEventListener("click", () => addTeamRow("", ""));
  $("match-cancel").addEventListener("click", () => dialog.close());
  $("match-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const teams = [...document.querySelectorAll(".match-team")]
      .map((row) => ({
        name: row.querySelector(".team-name").value.trim(),
        players: row
          .querySelector(".team-players")
          .value.split(",")
          .map((item) => item.trim())
          .filter(Boolean)
          .map((item) => {
            const [id, name] = item.split("=").map((part) => part.trim());
            return name ? { id, name } : { id };
          }),
      }))
      .filter((team) => team.name || team.players.length);
    const message = { type: "match_start", name: $("match-name").value.trim(), format: $("match-format").value, teams, ref: "match-start" };
    const packet = $("match-packet").value.trim();
    if (packet) message.packet = packet;
    $("match-error").hidden = true;
    if (send(message)) dialog.close();
  });
}

function addTeamRow(name, players) {
  const row = el(
    "div",
    { class: "match-team" },
    el("input", { class: "team-name", value: name, maxlength: "40", placeholder: "Team", "aria-label": "Team name" }),
    el("input", { class: "team-players", value: players, placeholder: "station ids: red-1, red-2, red-3, red-4", "aria-label": `Players of ${name || "the team"}` }),
  );
  $("match-teams").append(row);
}

function openMatchDialog() {
  const formats = [
    ["quizbowl", "Quiz bowl"],
    ["jeopardy", "Jeopardy-style"],
    ["classroom", "Classroom"],
  ];
  $("match-format").replaceChildren(...formats.map(([value, label]) => el("option", { value }, label)));
  $("match-teams").replaceChildren();
  // Teams as the hub knows them now (the config's, or as the host set them).
  const teams = game ? game.teams.filter((t) => t.members.length) : [];
  for (const team of teams) addTeamRow(team.team, team.members.map((m) => m.id).join(", "));
  while (document.querySelectorAll(".match-team").length < 2) addTeamRow("", "");
  $("match-stations").textContent = state ? state.players.map((p) => (p.name === p.id ? p.id : `${p.id} (${p.name})`)).join(", ") || "none yet" : "none yet";
  $("match-dialog").showModal();
  $("match-name").focus();
}
