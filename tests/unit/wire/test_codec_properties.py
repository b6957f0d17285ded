"""Whatever arrives on the wire, the decoder answers with a value: a message or a protocol error.

The hub calls the decoder on every frame from every client; an exception escaping it would end
that client's handler at best. These properties feed it arbitrary text and bytes, JSON shaped like
real messages with hostile values, and the nasty corners of JSON itself.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wire import codec
from wire import messages as msg
from wire.enums import ErrorCode

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
field_names = st.sampled_from(
    ["type", "protocol", "role", "id", "name", "input", "token", "team", "ref", "press_id",
     "at_ns", "round", "seq", "t0_ns", "t1_ns", "t2_ns"]
)  # fmt: skip
type_names = st.one_of(st.sampled_from([*msg.CLIENT_TYPES, *msg.HUB_TYPES]), st.text(max_size=10))
message_like = st.builds(
    lambda body, kind: {**body, "type": kind},
    st.dictionaries(field_names, json_values, max_size=6),
    type_names,
)


def assert_value(result: object) -> None:
    """The decoder's contract: a Decoded holding a known message type, or a ProtocolError."""
    if isinstance(result, codec.ProtocolError):
        assert isinstance(result.code, ErrorCode)
        assert result.message
        assert "\n" not in result.message
        return
    assert isinstance(result, codec.Decoded), result
    assert type(result.message) in (*msg.CLIENT_TYPES.values(), *msg.HUB_TYPES.values())


def decode_both(frame: str | bytes) -> list[object]:
    return [codec.decode_client(frame), codec.decode_hub(frame)]


@SETTINGS
@given(st.text())
def test_any_text(text: str) -> None:
    for result in decode_both(text):
        assert_value(result)


@SETTINGS
@given(st.binary())
def test_any_bytes_are_refused_as_binary(data: bytes) -> None:
    result = codec.decode_client(data)
    assert isinstance(result, codec.ProtocolError)
    assert result.code is ErrorCode.BINARY_FRAME


@SETTINGS
@given(st.binary())
def test_bytes_read_as_text_any_way(data: bytes) -> None:
    """Invalid UTF-8 reaching the decoder as text (after a lenient decode) is still just text."""
    for text in (data.decode("utf-8", "surrogateescape"), data.decode("latin-1")):
        for result in decode_both(text):
            assert_value(result)


@SETTINGS
@given(message_like)
def test_message_shaped_json_with_hostile_values(body: dict[str, Any]) -> None:
    text = json.dumps(body, allow_nan=True)
    for result in decode_both(text):
        assert_value(result)
    result = codec.decode_client(text)
    if isinstance(result, codec.Decoded):
        # Anything accepted is a value the hub can use as it is: integers in range, no floats.
        for name in ("at_ns", "seq", "t0_ns", "t1_ns", "t2_ns", "protocol"):
            value = getattr(result.message, name, None)
            if value is not None:
                assert type(value) is int
                assert -msg.NS_MAX <= value <= msg.NS_MAX


@SETTINGS
@given(st.integers(min_value=1, max_value=50_000), st.sampled_from(["[", '{"a":', '[{"b":']))
def test_deeply_nested_json(depth: int, opener: str) -> None:
    closer = {"[": "]", '{"a":': "}", '[{"b":': "}]"}[opener]
    text = opener * depth + "1" + closer * depth
    for result in decode_both(text):
        assert_value(result)
    nested_in_message = '{"type":"press","press_id":"a","at_ns":' + text + "}"
    assert isinstance(codec.decode_client(nested_in_message), codec.ProtocolError)


@SETTINGS
@given(st.integers(min_value=20, max_value=20_000))
def test_huge_numbers(digits: int) -> None:
    number = "9" * digits  # NS_MAX has 19 digits
    for literal in (number, "-" + number, number + ".5", "1e" + number, number + "e-999"):
        frame = '{"type":"press","press_id":"p1","at_ns":' + literal + "}"
        for result in decode_both(frame):
            assert_value(result)
        assert isinstance(codec.decode_client(frame), codec.ProtocolError)


def test_nan_and_infinity_literals_are_never_timestamps() -> None:
    for literal in ("NaN", "Infinity", "-Infinity", "1e400", "-1e400"):
        frame = '{"type":"sync_reply","seq":1,"t0_ns":1,"t1_ns":' + literal + ',"t2_ns":1}'
        result = codec.decode_client(frame)
        assert isinstance(result, codec.ProtocolError), literal
        assert result.code is ErrorCode.BAD_FIELD


@SETTINGS
@given(st.integers(min_value=0xD800, max_value=0xDFFF), st.sampled_from(["name", "token", "id"]))
def test_lone_surrogates(code_point: int, field_name: str) -> None:
    """JSON may spell a lone surrogate as an escape; Python strings may carry one directly."""
    escaped = '{"type":"hello","protocol":1,"role":"node","id":"n1","%s":"a\\u%04x"}'
    frame = escaped % (field_name, code_point)
    for result in decode_both(frame):
        assert_value(result)
    raw = '{"type":"hello","protocol":1,"role":"node","id":"n1","%s":"a%s"}'
    for result in decode_both(raw % (field_name, chr(code_point))):
        assert_value(result)


def test_lone_surrogate_escapes_are_refused_so_nothing_unencodable_is_echoed() -> None:
    """A lone surrogate in a token or an unknown field name would crash the send that echoes it."""
    for frame in (
        '{"type":"hello","protocol":1,"role":"node","id":"n1","token":"\\ud800"}',
        '{"type":"press","press_id":"p1","at_ns":1,"\\udc00":1}',
        '{"type":"press","press_id":"p1","at_ns":1,"ref":"x\\udfff"}',
    ):
        result = codec.decode_client(frame)
        assert isinstance(result, codec.ProtocolError), frame
        assert result.code is ErrorCode.BAD_JSON
        codec.error_frame(result).encode("utf-8")
    paired = codec.decode_client(
        '{"type":"press","press_id":"p1","at_ns":1,"ref":"\\ud83d\\ude00"}'
    )
    assert isinstance(paired, codec.Decoded)
    assert paired.message.ref == "\U0001f600"  # type: ignore[attr-defined]


@SETTINGS
@given(message_like)
def test_whatever_is_decoded_can_be_encoded_again(body: dict[str, Any]) -> None:
    result = codec.decode_client(json.dumps(body, allow_nan=True))
    if isinstance(result, codec.Decoded):
        codec.encode(result.message).encode("utf-8")
    else:
        codec.error_frame(result).encode("utf-8")


@SETTINGS
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_floats_are_not_integers(value: float) -> None:
    frame = json.dumps({"type": "press", "press_id": "p1", "at_ns": value}, allow_nan=True)
    result = codec.decode_client(frame)
    assert isinstance(result, codec.ProtocolError)
    if not math.isnan(value):
        assert result.code is ErrorCode.BAD_FIELD
