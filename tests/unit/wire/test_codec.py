"""The protocol v1 decoder and encoder: every error code it produces, warnings, round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import codec
from wire import messages as msg
from wire.enums import ErrorCode, Flag, InputKind, Phase, ReboundMode, Role


def error_of(frame: str | bytes) -> codec.ProtocolError:
    result = codec.decode_client(frame)
    assert isinstance(result, codec.ProtocolError), result
    return result


def decoded(frame: dict[str, Any]) -> codec.Decoded:
    result = codec.decode_client(json.dumps(frame))
    assert isinstance(result, codec.Decoded), result
    return result


HELLO = {"type": "hello", "protocol": 1, "role": "node", "id": "desk-1", "name": "Alice"}


def test_a_full_hello_decodes_to_its_fields() -> None:
    result = decoded({**HELLO, "input": "gpio", "token": "t", "team": "Red", "ref": "r1"})
    assert result.message == msg.Hello(
        protocol=1,
        role="node",
        id="desk-1",
        name="Alice",
        input="gpio",
        token="t",
        team="Red",
        ref="r1",
    )
    assert result.unknown_fields == ()


def test_optional_fields_may_be_left_out_or_null() -> None:
    assert decoded({"type": "hello", "protocol": 1, "role": "viewer"}).message == msg.Hello(
        protocol=1, role="viewer"
    )
    assert decoded({**HELLO, "name": None}).message == msg.Hello(
        protocol=1, role="node", id="desk-1"
    )


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"type": "hello",', ErrorCode.BAD_JSON),
        ("", ErrorCode.BAD_JSON),
        ("[" * 100_000 + "]" * 100_000, ErrorCode.BAD_JSON),
        ("[1, 2]", ErrorCode.NOT_AN_OBJECT),
        ('"press"', ErrorCode.NOT_AN_OBJECT),
        ("null", ErrorCode.NOT_AN_OBJECT),
        ('{"protocol": 1}', ErrorCode.MISSING_FIELD),
        ('{"type": 7}', ErrorCode.MISSING_FIELD),
        ('{"type": "teleport"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": "welcome", "protocol": 1}', ErrorCode.UNKNOWN_TYPE),  # hub-only type
        ('{"type": "hello", "role": "node"}', ErrorCode.MISSING_FIELD),
        ('{"type": "press", "press_id": "a1"}', ErrorCode.MISSING_FIELD),
        ('{"type": "sync_reply", "seq": 1, "t0_ns": 1, "t1_ns": 2}', ErrorCode.MISSING_FIELD),
        ('{"type": "hello", "protocol": "1", "role": "node"}', ErrorCode.BAD_FIELD),
        ('{"type": "hello", "protocol": true, "role": "node"}', ErrorCode.BAD_FIELD),
        ('{"type": "hello", "protocol": 1.0, "role": "node"}', ErrorCode.BAD_FIELD),
        ('{"type": "hello", "protocol": -1, "role": "node"}', ErrorCode.BAD_FIELD),
        ('{"type": "hello", "protocol": 1, "role": "admin"}', ErrorCode.BAD_FIELD),
        ('{"type": "hello", "protocol": 1, "role": "node", "id": "-x"}', ErrorCode.BAD_FIELD),
        ('{"type": "hello", "protocol": 1, "role": "node", "name": ""}', ErrorCode.BAD_FIELD),
        (
            '{"type": "hello", "protocol": 1, "role": "node", "name": "a\\nb"}',
            ErrorCode.BAD_FIELD,
        ),
        (
            '{"type": "hello", "protocol": 1, "role": "node", "input": "mind"}',
            ErrorCode.BAD_FIELD,
        ),
        ('{"type": "press", "press_id": "a1", "at_ns": 1.5}', ErrorCode.BAD_FIELD),
        ('{"type": "press", "press_id": "a1", "at_ns": NaN}', ErrorCode.BAD_FIELD),
        (
            '{"type": "press", "press_id": "a1", "at_ns": 9223372036854775808}',
            ErrorCode.BAD_FIELD,
        ),
        ('{"type": "press", "press_id": "a b", "at_ns": 1}', ErrorCode.BAD_FIELD),
        ('{"type": "press", "press_id": "a1", "at_ns": 1, "round": -1}', ErrorCode.BAD_FIELD),
        ('{"type": "arm", "ref": 5}', ErrorCode.BAD_FIELD),
    ],
)
def test_each_kind_of_bad_frame_gets_its_error_code(frame: str, code: ErrorCode) -> None:
    error = error_of(frame)
    assert error.code is code
    assert error.message  # always says something a client author can act on


def test_binary_frames_are_refused() -> None:
    assert error_of(b'{"type": "arm"}').code is ErrorCode.BINARY_FRAME


def test_errors_name_the_field_and_the_message_type() -> None:
    missing = error_of('{"type": "press", "press_id": "a1"}')
    assert missing.message == "'press' needs the field 'at_ns'"
    wrong = error_of('{"type": "press", "press_id": "a1", "at_ns": "soon"}')
    assert wrong.message == "'press': field 'at_ns' must be an integer, got \"soon\""
    unknown = error_of('{"type": "teleport"}')
    assert (
        "known types: arm, bonus, clear_scores, close, floor, hello, match_end, match_start, "
        "players, press, read, reset, right, score, sync_reply, team, undo, value, wager, wrong"
        in unknown.message
    )


def test_name_length_limit_is_forty_characters() -> None:
    assert decoded({**HELLO, "name": "x" * msg.NAME_MAX_CHARS}).message
    assert error_of(json.dumps({**HELLO, "name": "x" * 41})).code is ErrorCode.BAD_FIELD


def test_unknown_fields_are_reported_but_the_message_is_used() -> None:
    result = decoded({"type": "press", "press_id": "a1", "at_ns": 5, "zeta": 1, "alpha": 2})
    assert result.message == msg.Press(press_id="a1", at_ns=5)
    assert result.unknown_fields == ("alpha", "zeta")


def test_negative_and_extreme_timestamps_are_valid() -> None:
    # Node clocks are monotonic clocks with an arbitrary origin: any signed 64-bit value.
    for at in (-msg.NS_MAX, -1, 0, msg.NS_MAX):
        assert decoded({"type": "press", "press_id": "a1", "at_ns": at}).message == msg.Press(
            press_id="a1", at_ns=at
        )


def test_encode_puts_type_first_and_is_compact() -> None:
    frame = codec.encode(msg.Ack(press_id="a1"))
    assert frame == '{"type":"ack","press_id":"a1"}'
    assert codec.encode(msg.Warning(code="unknown_field", message="é")) == (
        '{"type":"warning","code":"unknown_field","message":"é"}'
    )


def test_encode_keeps_field_order_lists_and_nulls_for_every_frame_of_a_kind() -> None:
    def frame(rank: int | None) -> str:
        return codec.encode(
            msg.Result(
                round=3,
                press_id="n1-7",
                rank=rank,
                flags=["late", "tie"],
                text="Zweiter, 0,012 s dahinter, knapp für Jörg",
                reaction_ns=None,
                behind_ns=12_000_000,
                uncertainty_ns=400,
                lockout_ns=None,
            )
        )

    first, second = frame(2), frame(None)  # the second is encoded with the cached field names
    assert first == (
        '{"type":"result","round":3,"press_id":"n1-7","rank":2,"flags":["late","tie"],'
        '"text":"Zweiter, 0,012 s dahinter, knapp für Jörg","reaction_ns":null,'
        '"behind_ns":12000000,"uncertainty_ns":400,"lockout_ns":null}'
    )
    assert second == first.replace('"rank":2', '"rank":null')


def test_error_frame_carries_code_message_and_ref() -> None:
    frame = json.loads(codec.error_frame(codec.ProtocolError(ErrorCode.BAD_JSON, "oops"), ref="r7"))
    assert frame == {"type": "error", "code": "bad_json", "message": "oops", "ref": "r7"}


PRESS = msg.PressView(
    rank=1,
    player="ann",
    name="Ann",
    press_id="ann.1",
    reaction_ns=342_000_000,
    behind_ns=0,
    uncertainty_ns=223_928,
    flags=[Flag.TIE],
    at_ns=1_126_346_827_714,
    raw_ns=-5,
    arrival_ns=1_126_347_110_931,
    team="red",
)
FULL_STATE = msg.State(
    hub_ns=1,
    round=msg.RoundView(
        number=3,
        state=Phase.DECIDED,
        armed_ns=1,
        release_ns=2,
        decided_ns=3,
        adjudication_wait_ns=4,
        winner="Ann",
        results=[PRESS],
        refused=[],
    ),
    players=[
        msg.PlayerView(
            id="ann",
            name="Ann",
            input=InputKind.GPIO,
            team="red",
            online=True,
            synced=True,
            offset_ns=-7,
            rtt_ns=800_000,
            uncertainty_ns=40_000,
            bound_ns=400_000,
            upload_ns=410_000,
            drift_ppm=1.5,
            last_sync_ns=9,
            last_seen_ns=10,
        )
    ],
    history=[msg.RoundView(number=2, state=Phase.CLOSED, results=[PRESS])],
    game=msg.GameView(
        question=2,
        answering=msg.AnsweringView(player="ann", name="Ann", team="red", since_ns=3),
        answer_warning_ns=None,
        answer_deadline_ns=None,
        buzz_deadline_ns=None,
        out=msg.OutView(players=["bob"], teams=[]),
        teams=[msg.TeamView(team="red", members=[msg.MemberView(id="ann", name="Ann")], points=10)],
        team_ranking=[
            msg.TeamPlaceView(
                rank=1, team="red", player="ann", name="Ann", player_rank=1, behind_ns=0
            )
        ],
        scores=msg.ScoresView(
            players=[msg.PlayerScoreView(id="ann", name="Ann", team="red", points=10)],
            teams=[msg.TeamScoreView(id="red", points=10)],
        ),
        points=msg.PointsView(players={"ann": 10}, teams={"red": 10}),
        rules=msg.RulesView(
            one_buzz_per_team=True,
            rebound=ReboundMode.NEXT,
            buzz_window_ns=None,
            answer_ns=5_000_000_000,
            answer_warning_ns=None,
            lockout_ns=None,
            points_right=10,
            points_wrong=-5,
        ),
        applied=4,
    ),
    storage=msg.StorageView(saving=True, path="/tmp/results.db", message="results are saved"),
    join=msg.JoinView(browser_players=True, token_required=False),
)

HUB_MESSAGES: list[msg.Message] = [
    msg.Welcome(protocol=1, role="node", greeting="Hello Alice!", hub_ns=5, id="a", round=None),
    msg.Sync(seq=3, t0_ns=-12),
    msg.RoundUpdate(number=2, state="armed", release_ns=99, synced=True, locked_out=False),
    msg.Ack(press_id="a1"),
    msg.Result(
        round=1, press_id="a1", rank=2, flags=["tie"], text="Second", reaction_ns=1, behind_ns=0
    ),
    msg.Welcome(
        protocol=1,
        role=Role.HOST,
        greeting="Hello host!",
        hub_ns=5,
        round=msg.RoundUpdate(number=4, state=Phase.DECIDED, winner="Ann"),
    ),
    msg.State(hub_ns=1, round=msg.RoundView(number=0, state=Phase.IDLE), players=[], history=[]),
    FULL_STATE,
    msg.Error(code="bad_json", message="m", ref=None),
    msg.Warning(code="unknown_field", message="m"),
]


def test_every_nested_object_decodes_to_its_dataclass() -> None:
    decoded = codec.decode_hub(codec.encode(FULL_STATE))
    assert isinstance(decoded, codec.Decoded)
    state = decoded.message
    assert isinstance(state, msg.State)
    assert isinstance(state.round.results[0], msg.PressView)
    assert state.round.results[0].flags == [Flag.TIE]
    assert isinstance(state.players[0].input, InputKind)
    assert state.game is not None
    assert isinstance(state.game.scores.teams[0], msg.TeamScoreView)
    assert state.game.rules.rebound is ReboundMode.NEXT


def test_unknown_fields_are_reported_at_every_depth_and_lose_nothing() -> None:
    data = json.loads(codec.encode(FULL_STATE))
    data["colour"] = "red"
    data["round"]["results"][0]["colour"] = "red"
    data["game"]["rules"]["colour"] = "red"
    data["storage"]["colour"] = "red"
    decoded = codec.decode_hub(json.dumps(data))
    assert isinstance(decoded, codec.Decoded)
    assert decoded.message == FULL_STATE
    assert decoded.unknown_fields == (
        "colour",
        "game.rules.colour",
        "round.results[0].colour",
        "storage.colour",
    )


def test_a_flag_from_a_newer_hub_is_left_out_not_fatal() -> None:
    frame = '{"type":"result","round":1,"press_id":"a","rank":1,"flags":["tie","shiny"],"text":"t"}'
    decoded = codec.decode_hub(frame)
    assert isinstance(decoded, codec.Decoded)
    assert isinstance(decoded.message, msg.Result)
    assert decoded.message.flags == [Flag.TIE]
    assert decoded.unknown_fields == ("flags[1]=shiny",)


def test_a_nested_object_that_does_not_fit_names_its_path() -> None:
    frame = '{"type":"round","number":1,"state":"armed"}'
    assert isinstance(codec.decode_hub(frame), codec.Decoded)
    empty = '"players":[],"history":[]'
    missing = codec.decode_hub(f'{{"type":"state","hub_ns":1,"round":{{"state":"idle"}},{empty}}}')
    assert missing == codec.ProtocolError(
        ErrorCode.MISSING_FIELD, "'state' needs the field 'round.number'"
    )
    results = '"results":[{"rank":"1"}]'
    round_ = f'{{"number":0,"state":"idle",{results}}}'
    wrong = codec.decode_hub(f'{{"type":"state","hub_ns":1,"round":{round_},{empty}}}')
    assert wrong == codec.ProtocolError(
        ErrorCode.BAD_FIELD, "'state': field 'round.results[0].rank' must be an integer, got \"1\""
    )


@pytest.mark.parametrize("message", HUB_MESSAGES, ids=lambda m: m.TYPE)
def test_hub_messages_round_trip(message: msg.Message) -> None:
    result = codec.decode_hub(codec.encode(message))
    assert isinstance(result, codec.Decoded)
    assert result.message == message
    assert result.unknown_fields == ()


ids = st.from_regex(msg.ID_PATTERN, fullmatch=True)
ns = st.integers(-msg.NS_MAX, msg.NS_MAX)
refs = st.none() | st.text(min_size=1, max_size=64)
client_messages = st.one_of(
    st.builds(
        msg.Hello,
        protocol=st.integers(0, 1_000_000),
        role=st.sampled_from(list(Role)).map(str),
        id=st.none() | ids,
        name=st.none() | st.text(min_size=1, max_size=msg.NAME_MAX_CHARS).filter(str.isprintable),
        input=st.none() | st.sampled_from(list(InputKind)).map(str),
        token=st.none() | st.text(min_size=1, max_size=msg.TOKEN_MAX_CHARS),
        ref=refs,
    ),
    st.builds(msg.Press, press_id=ids, at_ns=ns, round=st.none() | st.integers(0, msg.NS_MAX)),
    st.builds(msg.SyncReply, seq=st.integers(0, msg.NS_MAX), t0_ns=ns, t1_ns=ns, t2_ns=ns),
    st.builds(msg.Arm, ref=refs),
    st.builds(msg.Reset, ref=refs),
    st.builds(msg.CloseRound, ref=refs),
)


@settings(max_examples=200)
@given(client_messages)
def test_client_messages_round_trip(message: msg.Message) -> None:
    result = codec.decode_client(codec.encode(message))
    assert isinstance(result, codec.Decoded), result
    assert result.message == message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(max_examples=200)
@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=50),
        st.dictionaries(
            st.sampled_from(["type", "protocol", "role", "id", "press_id", "at_ns", "seq", "x"]),
            json_values | st.sampled_from(["hello", "press", "sync_reply", "arm"]),
        ).map(json.dumps),
    )
)
def test_decode_never_raises(frame: str | bytes) -> None:
    result = codec.decode_client(frame)
    assert isinstance(result, codec.Decoded | codec.ProtocolError)
    if isinstance(result, codec.ProtocolError):
        assert result.code in set(ErrorCode)


def test_players_command_switches_browser_players() -> None:
    decoded = codec.decode_client('{"type":"players","browser":false}')
    assert isinstance(decoded, codec.Decoded)
    assert decoded.message == msg.Players(browser=False)
    refused = codec.decode_client('{"type":"players","browser":"no"}')
    assert isinstance(refused, codec.ProtocolError)
    assert refused.code is ErrorCode.BAD_FIELD
    assert "true or false" in refused.message
