// The tournament page: reads /api/tournament every few seconds and draws rooms, standings,
// matches and the schedule. Plain DOM, text only (names come from rooms and are never HTML).

const POLL_MS = 2000;

function cell(text, numeric = false) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (numeric) td.className = "num";
  return td;
}

function fill(table, rows) {
  const body = document.querySelector(`#${table} tbody`);
  body.replaceChildren(...rows);
}

function row(cells, status) {
  const tr = document.createElement("tr");
  tr.append(...cells);
  if (status) tr.dataset.status = status;
  return tr;
}

function score(match) {
  return match.teams.map((t) => `${t.name} ${t.points}`).join(" – ");
}

function link(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  a.setAttribute("download", "");
  const td = document.createElement("td");
  td.append(a);
  return td;
}

function heard(room) {
  if (room.heard_s === null) return "never heard from";
  if (room.online) return "online";
  const minutes = Math.round(room.heard_s / 60);
  return minutes < 1 ? `not heard for ${Math.round(room.heard_s)} s` : `not heard for ${minutes} min`;
}

function drawRooms(rooms) {
  const boxes = rooms.map((room) => {
    const box = document.createElement("article");
    box.className = "room";
    box.dataset.room = room.id;
    box.dataset.online = String(room.online);
    const title = document.createElement("h3");
    const name = document.createElement("span");
    name.textContent = room.name;
    const state = document.createElement("span");
    state.className = "heard";
    state.textContent = heard(room);
    title.append(name, state);
    box.append(title);
    const shown = room.match || room.last;
    const what = document.createElement("div");
    if (shown) {
      what.className = room.match ? "playing" : "idle";
      // A match named after its pairing already says its round.
      const round = shown.round && !shown.name.startsWith(`Round ${shown.round}`) ? `Round ${shown.round}: ` : "";
      what.textContent = room.match
        ? `${round}${shown.name} · question ${shown.question}`
        : `Last: ${round}${shown.name} (final)`;
      const line = document.createElement("div");
      line.className = "score";
      line.textContent = score(shown);
      box.append(what, line);
    } else {
      what.className = "idle";
      what.textContent = "No match yet";
      box.append(what);
    }
    return box;
  });
  document.getElementById("rooms").replaceChildren(...boxes);
}

function draw(data) {
  const roomNames = new Map(data.rooms.map((room) => [room.id, room.name]));
  const roomName = (id) => roomNames.get(id) || id;
  const statusOf = new Map(data.matches.map((m) => [m.key, m.status]));
  const name = data.tournament ? data.tournament.name : data.id;
  document.getElementById("title").textContent = name;
  document.title = `${name} · Buzzer Beater`;
  drawRooms(data.rooms);
  fill("teams", data.standings.teams.map((t) => row([
    cell(t.rank, true), cell(t.team), cell(t.played, true), cell(t.wins, true),
    cell(t.losses, true), cell(t.ties, true), cell(t.points, true), cell(t.ppg.toFixed(2), true),
  ])));
  fill("players", data.standings.players.map((p) => row([
    cell(p.rank, true), cell(p.name), cell(p.team), cell(p.games, true), cell(p.powers, true),
    cell(p.tens, true), cell(p.negs, true), cell(p.points, true), cell(p.ppg.toFixed(2), true),
  ])));
  fill("matches", data.matches.map((m) => row([
    cell(m.round ?? "–"), cell(roomName(m.room)), cell(m.name), cell(score(m)),
    cell(m.status === "playing" ? `playing (question ${m.question})` : "final"),
    link(m.qbj, "QBJ"),
  ], m.status)));
  fill("schedule", data.schedule.map((p) => row([
    cell(p.round), cell(roomName(p.room)), cell(p.teams.join(" v ")),
    cell(!p.match ? "" : statusOf.get(p.match) === "playing" ? "playing" : "final"),
  ])));
}

async function poll() {
  const badge = document.getElementById("link");
  try {
    const response = await fetch("/api/tournament", { cache: "no-store" });
    const data = await response.json();
    if (data.error) {
      badge.dataset.state = "down";
      badge.textContent = data.error;
    } else {
      badge.dataset.state = "live";
      badge.textContent = `Live · ${new Date().toLocaleTimeString()}`;
      draw(data);
    }
  } catch (error) {
    badge.dataset.state = "down";
    badge.textContent = "The tournament service does not answer";
  }
  setTimeout(poll, POLL_MS);
}

poll();
