// The link to the hub shared by the host console and the big screen, plus the number formats
// both pages use. A page must keep working through hub restarts without anyone touching it, so
// the link reconnects on its own (100 ms, doubling, capped at 1 s) and says so while it does.

const PROTOCOL = 1;
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 1000;
const CLOSE_BAD_TOKEN = 4401;
const CLOSE_VERSION_MISMATCH = 4426;

/** The hub's WebSocket address: the same host and port that served this page. */
export function hubUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/`;
}

/**
 * One hub connection that survives restarts.
 *
 * hello:     extra hello fields ({role, token, name}).
 * onState:   called with each `state` picture.
 * onStatus:  called with ("connecting" | "live" | "reconnecting" | "refused", detail text).
 * onRefused: called once with the hub's message when it refuses the hello for good
 *            (wrong token, unsupported protocol); the link then stops retrying.
 * onMessage: optional; called with every other message after the welcome (ruling, timer, error).
 */
export class HubLink {
  constructor({ hello, onState, onStatus, onRefused, onMessage }) {
    this.hello = hello;
    this.onMessage = onMessage || (() => {});
    this.onState = onState;
    this.onStatus = onStatus;
    this.onRefused = onRefused;
    this.ws = null;
    this.retryMs = FIRST_RETRY_MS;
    this.attempt = 0;
    this.stopped = true;
    this.everLive = false;
    this.refusal = null;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.refusal = null;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "page closed the link");
  }

  /** Send a message when connected; returns false (and sends nothing) otherwise. */
  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  open() {
    this.attempt += 1;
    if (this.everLive) {
      this.onStatus("reconnecting", `Reconnecting to the hub… (try ${this.attempt})`);
    } else {
      this.onStatus("connecting", "Connecting to the hub…");
    }
    const ws = new WebSocket(hubUrl());
    this.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "hello", protocol: PROTOCOL, ...this.hello }));
    };
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = (event) => this.closed(ws, event);
  }

  receive(message) {
    if (message.type === "welcome") {
      this.everLive = true;
      this.attempt = 0;
      this.retryMs = FIRST_RETRY_MS;
      this.onStatus("live", "Connected to the hub");
    } else if (message.type === "state") {
      this.onState(message);
    } else if (message.type === "error") {
      // Errors before the welcome are about the hello; the close that follows says if final.
      this.refusal = message.message;
      console.warn("hub error", message.code, message.message);
      if (this.everLive) this.onMessage(message);
    } else {
      this.onMessage(message);
    }
  }

  closed(ws, event) {
    if (ws !== this.ws || this.stopped) return;
    if (event.code === CLOSE_BAD_TOKEN || event.code === CLOSE_VERSION_MISMATCH) {
      this.stopped = true;
      const why = this.refusal || event.reason || "the hub refused this page";
      this.onStatus("refused", why);
      this.onRefused(why, event.code);
      return;
    }
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    this.onStatus(
      this.everLive ? "reconnecting" : "connecting",
      this.everLive ? "Lost the hub; reconnecting…" : "Waiting for the hub…",
    );
    this.timer = setTimeout(() => this.open(), wait);
  }
}

/** Nanoseconds as milliseconds with a fixed number of decimals, e.g. "25.00 ms". */
export function ms(ns, digits = 1) {
  if (ns === null || ns === undefined) return "–";
  return `${(ns / 1e6).toFixed(digits)} ms`;
}

/** The gap behind the winner: "+25.00 ms"; the winner (rank 1) shows none. */
export function gap(ns, rank) {
  if (rank === 1 || ns === null || ns === undefined) return "–";
  return `+${(ns / 1e6).toFixed(2)} ms`;
}

/** Shorthand for building elements: el("td", {class: "x"}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Flags as small labelled chips (early, late, tie, …). */
export function flagChips(flags) {
  const span = el("span", { class: "flags" });
  for (const flag of flags || []) span.append(el("span", { class: `chip chip-${flag}` }, flag));
  return span;
}

/** Show the link state in a banner element with data-state for styling. */
export function showLink(banner, state, text) {
  banner.dataset.state = state;
  banner.textContent = text;
}
