"""The node core: every decision the station makes, driven with explicit node-clock instants."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pytest

from firmware.events import (
    Acked,
    Disconnected,
    HubFound,
    HubSaid,
    Pressed,
    Refused,
    Released,
    Resulted,
    RoundChanged,
    Sent,
    SyncAnswered,
)
from firmware.patterns import FAST_BLINK, HEARTBEAT, OFF, SOLID, Pattern, rank_blinks
from firmware.state import (
    Action,
    AnswerSync,
    Beep,
    Flicker,
    Log,
    NodeState,
    Outage,
    Say,
    Send,
    Setup,
    Show,
    WakeAt,
)
from wire import codec
from wire import messages as msg
from wire.discovery import FoundHub
from wire.enums import CloseCode, Flag, InputKind, Phase, Role

MS = 1_000_000
S = 1_000 * MS
T0 = 1_000 * S  # the node clock's reading when each test starts: any origin will do
SETUP = Setup(node_id="desk-1", name="Alice", token="", resync_flush_ns=500 * MS)
A = TypeVar("A")


# --- helpers: what the actions say ---


def of(kind: type[A], actions: list[Action]) -> list[A]:
    return [action for action in actions if isinstance(action, kind)]


def logged(kind: type[A], actions: list[Action]) -> list[A]:
    return [a.event for a in of(Log, actions) if isinstance(a.event, kind)]


def said(actions: list[Action]) -> list[str]:
    return [a.line for a in of(Say, actions)]


def sent(actions: list[Action]) -> list[msg.Press]:
    return [a.message for a in of(Send, actions) if isinstance(a.message, msg.Press)]


def shown(actions: list[Action]) -> Pattern | None:
    patterns = [a.pattern for a in of(Show, actions)]
    return patterns[-1] if patterns else None


def woken(actions: list[Action]) -> list[int | None]:
    return [a.at_ns for a in of(WakeAt, actions)]


def hub(message: msg.Message) -> codec.Decoded:
    return codec.Decoded(message)


def round_(number: int, state: Phase, release_ns: int | None = None, **kw: Any) -> msg.RoundUpdate:
    return msg.RoundUpdate(number=number, state=state, release_ns=release_ns, **kw)


def welcome(round_update: msg.RoundUpdate | None = None) -> msg.Welcome:
    return msg.Welcome(
        protocol=1,
        role=Role.NODE,
        greeting="Hello Alice!",
        hub_ns=5,
        id="desk-1",
        round=round_update or round_(0, Phase.IDLE),
    )


def result(press_id: str, rank: int | None, *flags: Flag, **kw: Any) -> msg.Result:
    return msg.Result(
        round=kw.pop("round", 1),
        press_id=press_id,
        rank=rank,
        flags=list(flags),
        text=kw.pop("text", f"rank {rank}"),
        **kw,
    )


def linked(round_update: msg.RoundUpdate | None = None, now: int = T0) -> NodeState:
    state = NodeState(SETUP, boot="b00t")
    state.opened(now, InputKind.GPIO)
    state.receive(hub(welcome(round_update)), now)
    return state


# --- the link coming up ---


def test_the_hello_introduces_the_station() -> None:
    state = NodeState(Setup(node_id="desk-1", name="Alice", token="s3cret"), boot="b00t")
    [send] = of(Send, state.opened(T0, InputKind.TERMINAL))
    assert send.message == msg.Hello(
        protocol=msg.PROTOCOL_VERSION,
        role=Role.NODE,
        id="desk-1",
        name="Alice",
        input=InputKind.TERMINAL,
        token="s3cret",
    )


def test_a_button_stations_hello_says_how_long_its_presses_take_to_count() -> None:
    setup = Setup(node_id="desk-1", name="Alice", press_lead_ns=1 * MS)
    [send] = of(Send, NodeState(setup, boot="b00t").opened(T0, InputKind.GPIO))
    assert isinstance(send.message, msg.Hello)
    assert send.message.press_lead_ns == 1 * MS


def test_before_the_welcome_only_errors_count_and_the_led_stays_dark() -> None:
    state = NodeState(SETUP, boot="b00t")
    assert state.receive(hub(round_(1, Phase.ARMED, T0)), T0) == []
    assert state.receive(hub(msg.Sync(seq=0, t0_ns=1)), T0) == []
    actions = state.receive(hub(msg.Error(code="bad_field", message="nope")), T0)
    assert logged(HubSaid, actions) == [HubSaid("error", "bad_field", "nope")]
    assert said(actions) == ["Hub error: nope"]
    assert shown(actions) is None
    welcomed = state.receive(hub(welcome()), T0)
    assert said(welcomed) == ["Hello Alice!"]
    assert logged(RoundChanged, welcomed) == [RoundChanged(round_(0, Phase.IDLE))]
    assert shown(welcomed) == OFF
    assert state.linked


def test_a_refused_token_is_logged_but_left_to_the_close_to_explain() -> None:
    state = NodeState(SETUP)
    actions = state.receive(hub(msg.Error(code="bad_token", message="wrong token")), T0)
    assert logged(HubSaid, actions) == [HubSaid("error", "bad_token", "wrong token")]
    assert said(actions) == []


def test_a_hub_warning_is_told_once_and_logged_every_time() -> None:
    """An older hub warns of a field it does not know (a press's ``sent_ns``) in every press."""
    state = linked()
    warning = msg.Warning(code="unknown_field", message="ignored unknown field(s): sent_ns")
    first = state.receive(hub(warning), T0)
    again = state.receive(hub(warning), T0 + MS)
    assert said(first) == ["Hub warning: ignored unknown field(s): sent_ns"]
    assert said(again) == []
    assert len(logged(HubSaid, again)) == 1
    other = msg.Warning(code="unknown_field", message="ignored unknown field(s): other")
    assert said(state.receive(hub(other), T0)) == ["Hub warning: ignored unknown field(s): other"]
    error = msg.Error(code="bad_field", message="nope")
    for _ in range(2):  # an error is told every time: each refuses something
        assert said(state.receive(hub(error), T0)) == ["Hub error: nope"]


def test_a_sync_request_is_answered_with_its_arrival_instant() -> None:
    state = linked()
    actions = state.receive(hub(msg.Sync(seq=4, t0_ns=-77)), T0 + 123)
    assert of(AnswerSync, actions) == [AnswerSync(seq=4, t0_ns=-77, t1_ns=T0 + 123)]
    assert logged(SyncAnswered, actions) == [SyncAnswered(4)]


def test_a_frame_it_cannot_read_is_said_and_a_newer_hubs_fields_are_not() -> None:
    state = linked()
    bad = state.receive(codec.decode_hub('{"type":"result","round":"one"}'), T0)
    assert len(said(bad)) == 1
    assert said(bad)[0].startswith("The hub sent a frame this node does not understand:")
    frame = {"type": "round", "number": 1, "state": "armed", "release_ns": None, "x_future": 1}
    decoded = codec.decode_hub(json.dumps(frame))
    assert isinstance(decoded, codec.Decoded)
    assert decoded.unknown_fields == ("x_future",)
    actions = state.receive(decoded, T0)
    assert said(actions) == ["Round 1: go! (clock not synced yet, so lit on arrival)"]


# --- the release, in the node's own clock ---


def test_the_led_lights_at_the_release_instant_not_when_the_round_arrives() -> None:
    state = linked()
    release = T0 + 400 * MS
    armed = state.receive(hub(round_(1, Phase.ARMED, release, synced=True)), T0 + 10 * MS)
    assert logged(Released, armed) == []
    assert shown(armed) is None  # still off, as since the welcome
    assert state.look(T0 + 10 * MS).phase is Phase.ARMED
    assert woken(armed) == [release]

    early = state.timer(release - 1)  # a timer that fires a hair early: asked for again
    assert logged(Released, early) == []
    assert woken(early) == [release]

    lit = state.timer(release + 2 * MS)
    assert logged(Released, lit) == [Released(1, synced=True, late_ns=2 * MS)]
    assert said(lit) == ["Round 1: go!"]
    assert shown(lit) == SOLID
    assert woken(lit) == []  # the timer has fired and nothing more is due


def test_a_release_instant_already_past_lights_at_once_and_says_how_late() -> None:
    state = linked()
    actions = state.receive(hub(round_(1, Phase.ARMED, T0 - 30 * MS, synced=True)), T0)
    assert logged(Released, actions) == [Released(1, synced=True, late_ns=30 * MS)]
    assert shown(actions) == SOLID


def test_an_unsynced_node_lights_on_arrival_and_the_synced_update_does_not_light_it_again() -> None:
    state = linked()
    first = state.receive(hub(round_(1, Phase.ARMED)), T0)
    assert logged(Released, first) == [Released(1, synced=False, late_ns=0)]
    again = state.receive(hub(round_(1, Phase.ARMED, T0 + 100 * MS, synced=True)), T0 + MS)
    assert logged(Released, again) == []
    assert woken(again) == []


def test_a_round_reset_before_the_release_cancels_it() -> None:
    state = linked()
    state.receive(hub(round_(1, Phase.ARMED, T0 + 400 * MS, synced=True)), T0)
    reset = state.receive(hub(round_(1, Phase.IDLE)), T0 + 100 * MS)
    assert said(reset) == ["Round reset: wait for the next one."]
    assert woken(reset) == [None]
    assert logged(Released, state.timer(T0 + 400 * MS)) == []


# --- presses and their results ---


def test_a_press_is_shown_at_once_sent_and_awaits_its_result_with_the_light_on() -> None:
    state = linked()
    state.receive(hub(round_(1, Phase.ARMED, T0, synced=True)), T0)
    pressed = state.press(T0 + 342 * MS, "gpio")
    [event] = logged(Pressed, pressed)
    assert (event.at_ns, event.source) == (T0 + 342 * MS, "gpio")
    assert of(Flicker, pressed) == [Flicker()]
    assert said(pressed) == ["Press registered (gpio)."]
    assert sent(pressed) == [msg.Press(press_id=event.press_id, at_ns=T0 + 342 * MS)]
    assert logged(Sent, pressed) == [Sent(event.press_id, resend=False)]

    # Decided before this node's result arrived: no "X was first" line, and the light stays on.
    decided = state.receive(hub(round_(1, Phase.DECIDED, winner="Bob")), T0 + 350 * MS)
    assert said(decided) == []
    assert shown(decided) is None  # still SOLID
    second = state.receive(hub(result(event.press_id, 2, text="Second")), T0 + 351 * MS)
    assert said(second) == ["Second"]
    assert shown(second) == rank_blinks(2)
    assert of(Beep, second) == []


def test_first_place_beeps_and_stays_solid_but_a_repeat_does_not_beep() -> None:
    state = linked(round_(1, Phase.ARMED, T0, synced=True))
    press_id = logged(Pressed, state.press(T0 + MS, "gpio"))[0].press_id
    won = state.receive(hub(result(press_id, 1)), T0 + 5 * MS)
    assert of(Beep, won) == [Beep()]
    assert logged(Resulted, won) == [Resulted(result(press_id, 1))]
    decided = state.receive(hub(round_(1, Phase.DECIDED, winner="Alice")), T0 + 6 * MS)
    assert shown(decided) is None  # first place stays solid through the decision
    again = logged(Pressed, state.press(T0 + 9 * MS, "gpio"))[0].press_id
    repeat = state.receive(hub(result(again, 1, Flag.REPEAT)), T0 + 10 * MS)
    assert of(Beep, repeat) == []
    assert said(repeat) == ["rank 1"]


def test_another_winner_is_named_to_a_node_that_did_not_press() -> None:
    state = linked(round_(1, Phase.ARMED, T0))
    actions = state.receive(hub(round_(1, Phase.DECIDED, winner="Bob")), T0 + S)
    assert said(actions) == ["Round 1: Bob was first."]
    assert shown(actions) == OFF
    closed = state.receive(hub(round_(1, Phase.CLOSED)), T0 + 2 * S)
    assert said(closed) == ["Round 1 closed."]


def test_a_timed_lockout_blinks_fast_until_it_ends() -> None:
    state = linked(round_(1, Phase.ARMED, T0 + S, synced=True))
    press_id = logged(Pressed, state.press(T0 + 100 * MS, "gpio"))[0].press_id
    early = result(press_id, None, Flag.EARLY, lockout_ns=250 * MS, text="Too early!")
    locked = state.receive(hub(early), T0 + 110 * MS)
    assert shown(locked) == FAST_BLINK
    assert woken(locked) == [T0 + 360 * MS]  # the lockout's end comes before the release
    assert shown(state.timer(T0 + 359 * MS)) is None
    ended = state.timer(T0 + 360 * MS)
    assert shown(ended) == OFF  # armed, the release instant not reached yet
    assert woken(ended) == [T0 + S]


def test_a_lockout_until_the_next_arm_lasts_through_the_coming_round() -> None:
    state = linked(round_(0, Phase.IDLE))
    press_id = logged(Pressed, state.press(T0, "gpio"))[0].press_id
    early = result(press_id, None, Flag.EARLY, round=1, text="Too early!")  # the coming round
    assert shown(state.receive(hub(early), T0 + MS)) == FAST_BLINK
    assert woken(state.receive(hub(msg.Ack(press_id=press_id)), T0 + 2 * MS)) == [None]
    assert state.timer(T0 + 60 * S) == []  # no end to wait for, nothing changes
    assert shown(state.receive(hub(round_(1, Phase.ARMED)), T0 + 2 * S)) is None  # still locked
    assert shown(state.receive(hub(round_(2, Phase.ARMED)), T0 + 3 * S)) == SOLID


def test_the_hubs_lockout_flag_blinks_fast_too() -> None:
    state = linked()
    actions = state.receive(hub(round_(3, Phase.ARMED, locked_out=True)), T0)
    assert shown(actions) == FAST_BLINK


def test_rank_blinks_belong_to_their_round() -> None:
    state = linked(round_(1, Phase.ARMED, T0))
    press_id = logged(Pressed, state.press(T0 + MS, "gpio"))[0].press_id
    assert shown(state.receive(hub(result(press_id, 3)), T0 + 2 * MS)) == rank_blinks(3)
    assert shown(state.receive(hub(round_(2, Phase.IDLE)), T0 + S)) == OFF


def test_an_offer_beeps_and_rulings_and_timers_are_said() -> None:
    state = linked()
    offer = state.receive(hub(msg.Offer(round=1, text="Your turn to answer!")), T0)
    assert of(Beep, offer) == [Beep()]
    assert said(offer) == ["Your turn to answer!"]
    ruling = msg.Ruling(round=1, player="desk-1", name="Alice", correct=True, text="Correct! +10")
    assert said(state.receive(hub(ruling), T0)) == ["Correct! +10"]


# --- the outbox: re-sending until both the ack and the result are in ---


def test_a_press_without_a_link_waits_and_goes_once_the_hub_can_place_it() -> None:
    state = NodeState(SETUP, boot="b00t")
    state.link_lost(T0, Outage("cannot reach ws://hub", retry_s=0.1))
    offline = state.press(T0 + S, "gpio")
    press_id = logged(Pressed, offline)[0].press_id
    assert said(offline) == ["Press registered (gpio); the hub is unreachable, sending it later."]
    assert sent(offline) == []

    back = state.receive(hub(welcome()), T0 + 3 * S)
    assert said(back) == ["Hello Alice! Back in touch after 3.0 s; sending 1 waiting press(es)."]
    assert sent(back) == []  # not before the hub can place it in this node's clock
    assert woken(back) == [T0 + 3 * S + 500 * MS]
    synced = state.receive(hub(round_(0, Phase.IDLE, synced=True)), T0 + 3 * S + 40 * MS)
    assert sent(synced) == [msg.Press(press_id=press_id, at_ns=T0 + S)]  # its own instant
    assert logged(Sent, synced) == [Sent(press_id, resend=True)]


def test_without_a_synced_round_the_old_presses_go_after_the_flush_delay() -> None:
    state = NodeState(SETUP, boot="b00t")
    state.link_lost(T0, Outage("down"))
    state.press(T0 + S, "gpio")
    state.receive(hub(welcome()), T0 + 2 * S)
    assert sent(state.timer(T0 + 2 * S + 499 * MS)) == []
    assert len(sent(state.timer(T0 + 2 * S + 500 * MS))) == 1


def test_an_ack_alone_keeps_the_press_and_a_new_link_brings_its_lost_result() -> None:
    state = linked(round_(1, Phase.ARMED, T0))
    press_id = logged(Pressed, state.press(T0 + MS, "gpio"))[0].press_id
    assert logged(Acked, state.receive(hub(msg.Ack(press_id=press_id)), T0 + 2 * MS)) == [
        Acked(press_id)
    ]
    assert press_id in state.outbox

    state.link_lost(T0 + 3 * MS, Outage("the connection to the hub was lost"))  # result lost
    state.receive(hub(welcome(round_(1, Phase.DECIDED, winner="Alice"))), T0 + S)
    resend = state.receive(hub(round_(1, Phase.DECIDED, synced=True, winner="Alice")), T0 + S)
    assert logged(Sent, resend) == [Sent(press_id, resend=True)]
    assert shown(resend) == SOLID  # the light stays on until the verdict
    again = state.receive(hub(msg.Ack(press_id=press_id)), T0 + S + MS)
    assert logged(Acked, again) == []  # acknowledged before: not news
    won = state.receive(hub(result(press_id, 1, text="First place!")), T0 + S + 2 * MS)
    assert said(won) == ["First place!"]
    assert of(Beep, won) == [Beep()]
    assert state.look(T0 + S + 2 * MS).rank == 1  # solid on for first place from here on
    assert press_id not in state.outbox


def test_a_result_that_comes_twice_is_said_once_but_shows_its_rank_again() -> None:
    state = linked(round_(1, Phase.ARMED, T0))
    press_id = logged(Pressed, state.press(T0 + MS, "gpio"))[0].press_id
    assert said(state.receive(hub(result(press_id, 1, text="First place!")), T0 + 2 * MS))
    state.link_lost(T0 + 3 * MS, Outage("lost"))  # before the ack: the press goes again
    state.receive(hub(welcome(round_(1, Phase.DECIDED, synced=True))), T0 + S)
    repeated = state.receive(hub(result(press_id, 1, text="First place!")), T0 + S + MS)
    assert said(repeated) == []
    assert of(Beep, repeated) == []
    assert logged(Resulted, repeated) == []
    assert state.look(T0 + S + MS).rank == 1  # the rank the reconnect had cleared is back
    state.receive(hub(msg.Ack(press_id=press_id)), T0 + S + 2 * MS)
    assert len(state.outbox) == 0


def test_a_press_with_no_answer_on_a_live_link_goes_again_after_three_seconds() -> None:
    state = linked(round_(1, Phase.ARMED, T0))
    pressed = state.press(T0 + S, "gpio")
    press_id = logged(Pressed, pressed)[0].press_id
    assert woken(pressed) == [T0 + 4 * S]
    state.receive(hub(msg.Ack(press_id=press_id)), T0 + S + MS)  # ack, but no result
    assert sent(state.timer(T0 + 4 * S - 1)) == []
    overdue = state.timer(T0 + 4 * S)
    assert logged(Sent, overdue) == [Sent(press_id, resend=True)]
    assert woken(overdue) == [T0 + 7 * S]
    done = state.receive(hub(result(press_id, 2)), T0 + 4 * S + MS)
    assert woken(done) == [None]


# --- the link going down ---


def test_an_outage_is_told_once_shows_the_heartbeat_and_is_timed_on_return() -> None:
    state = linked()
    down = state.link_lost(T0 + S, Outage("the hub is shutting down", CloseCode.GOING_AWAY))
    assert said(down) == ["Hub unreachable: the hub is shutting down. Retrying every second or so."]
    assert logged(Disconnected, down) == [Disconnected("the hub is shutting down", 1001)]
    assert shown(down) == HEARTBEAT
    still = state.link_lost(T0 + 2 * S, Outage("cannot reach ws://hub: nothing listens there"))
    assert still == []  # the same outage: nothing new to say or show
    back = state.receive(hub(welcome()), T0 + 3 * S + 400 * MS)
    assert said(back) == ["Hello Alice! Back in touch after 2.4 s."]
    assert shown(back) == OFF


def test_nothing_found_on_the_lan_is_said_with_what_to_do() -> None:
    state = NodeState(Setup(node_id="box", name="box", hub_name="Finals"))
    reason = "no hub named 'Finals' answers on the LAN (mDNS) on eth0 (10.0.0.5/24)"
    actions = state.link_lost(T0, Outage(reason, nothing_found=True))
    assert said(actions) == [f"Hub unreachable: {reason}. Still looking."]
    assert shown(actions) == HEARTBEAT
    assert said(state.link_lost(T0 + S, Outage(reason, nothing_found=True))) == []  # once
    other = "this station has no network address yet"
    assert said(state.link_lost(T0 + 2 * S, Outage(other, nothing_found=True))) == [
        f"Hub unreachable: {other}. Still looking."
    ]


@pytest.mark.parametrize(
    ("code", "reason", "advice"),
    [
        (CloseCode.BAD_TOKEN, "bad token", "set --token or [node] token. Trying again in 30 s."),
        (CloseCode.REPLACED, "replaced", "give each node its own --id. Trying again in 30 s."),
    ],
)
def test_a_refusal_is_told_at_every_attempt(code: CloseCode, reason: str, advice: str) -> None:
    state = NodeState(SETUP)
    for attempt in range(2):
        actions = state.link_lost(T0 + attempt * 30 * S, Outage("closed", code, retry_s=30.0))
        assert logged(Refused, actions) == [Refused(code, reason, 30.0)]
        assert said(actions)[0].endswith(advice)
        assert len(logged(Disconnected, actions)) == (1 if attempt == 0 else 0)


def test_a_reconnect_forgets_the_old_rounds_rank_lock_and_release() -> None:
    state = linked(round_(1, Phase.ARMED, T0 + S, synced=True))
    press_id = logged(Pressed, state.press(T0, "gpio"))[0].press_id
    state.receive(hub(result(press_id, None, Flag.EARLY, text="Too early!")), T0 + MS)
    state.link_lost(T0 + 2 * MS, Outage("lost"))
    assert woken(state.link_lost(T0 + 3 * MS, Outage("lost"))) == []
    back = state.receive(hub(welcome(round_(1, Phase.IDLE))), T0 + 2 * S)
    assert shown(back) == OFF  # no lock, no release: the hub's word from here on
    assert logged(Released, state.timer(T0 + 3 * S)) == []


def test_the_hub_found_on_the_lan_is_named_once_per_address() -> None:
    state = NodeState(SETUP)
    chosen = FoundHub("alpha", ("10.0.0.7",), 8765, 1)
    other = FoundHub("Zeta", ("10.0.0.9",), 8765, 1)
    first = state.hub_found(chosen, chosen.url, [other, chosen], T0)
    assert logged(HubFound, first) == [
        HubFound("alpha", "ws://10.0.0.7:8765", ("ws://10.0.0.7:8765", "ws://10.0.0.9:8765"))
    ]
    assert said(first) == [
        "Found the hub 'alpha' at ws://10.0.0.7:8765 on the LAN. Other hubs answering: 'Zeta'; "
        "set hub_name to choose one of them."
    ]
    assert said(state.hub_found(chosen, chosen.url, [chosen], T0 + S)) == []
    assert len(said(state.hub_found(other, other.url, [other], T0 + 2 * S))) == 1
