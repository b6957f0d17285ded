"""The protocol v1 decoder and encoder: every error code it produces, warnings, round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import protocol as p


def error_of(frame: str | bytes) -> p.ProtocolError:
    result = p.decode_client(frame)
    assert isinstance(result, p.ProtocolError), result
    return result


def decoded(frame: dict[str, Any]) -> p.Decoded:
    result = p.decode_client(json.dumps(frame))
    assert isinstance(result, p.Decoded), result
    return result


HELLO = {"type": "hello", "protocol": 1, "role": "node", "id": "desk-1", "name": "Alice"}


def test_a_full_hello_decodes_to_its_fields() -> None:
    result = decoded({**HELLO, "input": "gpio", "token": "t", "team": "Red", "ref": "r1"})
    assert result.message == p.Hello(
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
    assert decoded({"type": "hello", "protocol": 1, "role": "viewer"}).message == p.Hello(
        protocol=1, role="viewer"
    )
    assert decoded({**HELLO, "name": None}).message == p.Hello(protocol=1, role="node", id="desk-1")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"type": "hello",', p.ErrorCode.BAD_JSON),
        ("", p.ErrorCode.BAD_JSON),
        ("[" * 100_000 + "]" * 100_000, p.ErrorCode.BAD_JSON),
        ("[1, 2]", p.ErrorCode.NOT_AN_OBJECT),
        ('"press"', p.ErrorCode.NOT_AN_OBJECT),
        ("null", p.ErrorCode.NOT_AN_OBJECT),
        ('{"protocol": 1}', p.ErrorCode.MISSING_FIELD),
        ('{"type": 7}', p.ErrorCode.MISSING_FIELD),
        ('{"type": "teleport"}', p.ErrorCode.UNKNOWN_TYPE),
        ('{"type": "welcome", "protocol": 1}', p.ErrorCode.UNKNOWN_TYPE),  # hub-only type
        ('{"type": "hello", "role": "node"}', p.ErrorCode.MISSING_FIELD),
        ('{"type": "press", "press_id": "a1"}', p.ErrorCode.MISSING_FIELD),
        ('{"type": "sync_reply", "seq": 1, "t0_ns": 1, "t1_ns": 2}', p.ErrorCode.MISSING_FIELD),
        ('{"type": "hello", "protocol": "1", "role": "node"}', p.ErrorCode.BAD_FIELD),
        ('{"type": "hello", "protocol": true, "role": "node"}', p.ErrorCode.BAD_FIELD),
        ('{"type": "hello", "protocol": 1.0, "role": "node"}', p.ErrorCode.BAD_FIELD),
        ('{"type": "hello", "protocol": -1, "role": "node"}', p.ErrorCode.BAD_FIELD),
        ('{"type": "hello", "protocol": 1, "role": "admin"}', p.ErrorCode.BAD_FIELD),
        ('{"type": "hello", "protocol": 1, "role": "node", "id": "-x"}', p.ErrorCode.BAD_FIELD),
        ('{"type": "hello", "protocol": 1, "role": "node", "name": ""}', p.ErrorCode.BAD_FIELD),
        (
            '{"type": "hello", "protocol": 1, "role": "node", "name": "a\\nb"}',
            p.ErrorCode.BAD_FIELD,
        ),
        (
            '{"type": "hello", "protocol": 1, "role": "node", "input": "mind"}',
            p.ErrorCode.BAD_FIELD,
        ),
        ('{"type": "press", "press_id": "a1", "at_ns": 1.5}', p.ErrorCode.BAD_FIELD),
        ('{"type": "press", "press_id": "a1", "at_ns": NaN}', p.ErrorCode.BAD_FIELD),
        (
            '{"type": "press", "press_id": "a1", "at_ns": 9223372036854775808}',
            p.ErrorCode.BAD_FIELD,
        ),
        ('{"type": "press", "press_id": "a b", "at_ns": 1}', p.ErrorCode.BAD_FIELD),
        ('{"type": "press", "press_id": "a1", "at_ns": 1, "round": -1}', p.ErrorCode.BAD_FIELD),
        ('{"type": "arm", "ref": 5}', p.ErrorCode.BAD_FIELD),
    ],
)
def test_each_kind_of_bad_frame_gets_its_error_code(frame: str, code: p.ErrorCode) -> None:
    error = error_of(frame)
    assert error.code is code
    assert error.message  # always says something a client author can act on


def test_binary_frames_are_refused() -> None:
    assert error_of(b'{"type": "arm"}').code is p.ErrorCode.BINARY_FRAME


def test_errors_name_the_field_and_the_message_type() -> None:
    missing = error_of('{"type": "press", "press_id": "a1"}')
    assert missing.message == "'press' needs the field 'at_ns'"
    wrong = error_of('{"type": "press", "press_id": "a1", "at_ns": "soon"}')
    assert wrong.message == "'press': field 'at_ns' must be an integer, got \"soon\""
    unknown = error_of('{"type": "teleport"}')
    assert (
        "known types: arm, clear_scores, close, hello, players, press, reset, right, score, "
        "sync_reply, "
        "team, wrong" in unknown.message
    )


def test_name_length_limit_is_forty_characters() -> None:
    assert decoded({**HELLO, "name": "x" * p.NAME_MAX_CHARS}).message
    assert error_of(json.dumps({**HELLO, "name": "x" * 41})).code is p.ErrorCode.BAD_FIELD


def test_unknown_fields_are_reported_but_the_message_is_used() -> None:
    result = decoded({"type": "press", "press_id": "a1", "at_ns": 5, "zeta": 1, "alpha": 2})
    assert result.message == p.Press(press_id="a1", at_ns=5)
    assert result.unknown_fields == ("alpha", "zeta")


def test_negative_and_extreme_timestamps_are_valid() -> None:
    # Node clocks are monotonic clocks with an arbitrary origin: any signed 64-bit value.
    for at in (-p.NS_MAX, -1, 0, p.NS_MAX):
        assert decoded({"type": "press", "press_id": "a1", "at_ns": at}).message == p.Press(
            press_id="a1", at_ns=at
        )


def test_encode_puts_type_first_and_is_compact() -> None:
    frame = p.encode(p.Ack(press_id="a1"))
    assert frame == '{"type":"ack","press_id":"a1"}'
    assert p.encode(p.Warning(code="unknown_field", message="é")) == (
        '{"type":"warning","code":"unknown_field","message":"é"}'
    )


def test_encode_keeps_field_order_lists_and_nulls_for_every_frame_of_a_kind() -> None:
    def frame(rank: int | None) -> str:
        return p.encode(
            p.Result(
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
    frame = json.loads(p.error_frame(p.ProtocolError(p.ErrorCode.BAD_JSON, "oops"), ref="r7"))
    assert frame == {"type": "error", "code": "bad_json", "message": "oops", "ref": "r7"}


HUB_MESSAGES: list[p.Message] = [
    p.Welcome(protocol=1, role="node", greeting="Hello Alice!", hub_ns=5, id="a", round=None),
    p.Sync(seq=3, t0_ns=-12),
    p.RoundUpdate(number=2, state="armed", release_ns=99, synced=True, locked_out=False),
    p.Ack(press_id="a1"),
    p.Result(
        round=1, press_id="a1", rank=2, flags=["tie"], text="Second", reaction_ns=1, behind_ns=0
    ),
    p.State(hub_ns=1, round={"number": 0}, players=[], history=[]),
    p.Error(code="bad_json", message="m", ref=None),
    p.Warning(code="unknown_field", message="m"),
]


@pytest.mark.parametrize("message", HUB_MESSAGES, ids=lambda m: m.TYPE)
def test_hub_messages_round_trip(message: p.Message) -> None:
    result = p.decode_hub(p.encode(message))
    assert isinstance(result, p.Decoded)
    assert result.message == message
    assert result.unknown_fields == ()


ids = st.from_regex(p.ID_PATTERN, fullmatch=True)
ns = st.integers(-p.NS_MAX, p.NS_MAX)
refs = st.none() | st.text(min_size=1, max_size=64)
client_messages = st.one_of(
    st.builds(
        p.Hello,
        protocol=st.integers(0, 1_000_000),
        role=st.sampled_from(list(p.Role)).map(str),
        id=st.none() | ids,
        name=st.none() | st.text(min_size=1, max_size=p.NAME_MAX_CHARS).filter(str.isprintable),
        input=st.none() | st.sampled_from(list(p.InputKind)).map(str),
        token=st.none() | st.text(min_size=1, max_size=p.TOKEN_MAX_CHARS),
        ref=refs,
    ),
    st.builds(p.Press, press_id=ids, at_ns=ns, round=st.none() | st.integers(0, p.NS_MAX)),
    st.builds(p.SyncReply, seq=st.integers(0, p.NS_MAX), t0_ns=ns, t1_ns=ns, t2_ns=ns),
    st.builds(p.Arm, ref=refs),
    st.builds(p.Reset, ref=refs),
    st.builds(p.CloseRound, ref=refs),
)


@settings(max_examples=200)
@given(client_messages)
def test_client_messages_round_trip(message: p.Message) -> None:
    result = p.decode_client(p.encode(message))
    assert isinstance(result, p.Decoded), result
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
    result = p.decode_client(frame)
    assert isinstance(result, p.Decoded | p.ProtocolError)
    if isinstance(result, p.ProtocolError):
        assert result.code in set(p.ErrorCode)


def test_only_frames_starting_with_a_brace_speak_json() -> None:
    assert p.looks_like_json('  {"type": "hello"}')
    assert not p.looks_like_json("buzz")
    assert not p.looks_like_json("[1]")


def test_players_command_switches_browser_players() -> None:
    decoded = p.decode_client('{"type":"players","browser":false}')
    assert isinstance(decoded, p.Decoded)
    assert decoded.message == p.Players(browser=False)
    refused = p.decode_client('{"type":"players","browser":"no"}')
    assert isinstance(refused, p.ProtocolError)
    assert refused.code is p.ErrorCode.BAD_FIELD
    assert "true or false" in refused.message
