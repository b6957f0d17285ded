"""The pure limit rules, origin and token parsing, TLS context errors and the [limits] settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.auth import origin_allowed, request_token
from hub.config import LimitsSection, SecuritySection
from hub.limits import NS_PER_S, LogThrottle, TokenBucket, room_for_connection, too_slow
from wire import codec
from wire import messages as msg
from wire.errors import TLSConfigError
from wire.tls import client_context, context_for, server_context


def test_bucket_allows_the_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    assert [bucket.take(0) for _ in range(6)] == [True] * 5 + [False]


def test_bucket_refills_at_its_rate_and_never_above_the_burst() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    for _ in range(5):
        bucket.take(0)
    assert not bucket.take(NS_PER_S // 20)  # half a token earned
    assert bucket.take(NS_PER_S // 10)  # one whole token
    assert not bucket.take(NS_PER_S // 10)
    # A long quiet spell earns at most a full burst.
    later = 100 * NS_PER_S
    assert [bucket.take(later) for _ in range(6)] == [True] * 5 + [False]


def test_bucket_ignores_time_going_backwards() -> None:
    bucket = TokenBucket(rate=1, burst=1)
    assert bucket.take(10 * NS_PER_S)
    assert not bucket.take(5 * NS_PER_S)
    assert not bucket.take(10 * NS_PER_S)
    assert bucket.take(11 * NS_PER_S)


def test_bucket_lets_a_real_node_through_at_the_default_limits() -> None:
    """Eight sync replies 20 ms apart, then one every 2 s, and ten presses a second for a minute."""
    limits = LimitsSection()
    bucket = TokenBucket(limits.messages_per_s, limits.message_burst)
    times = [i * 20_000_000 for i in range(8)]
    times += [s * 2 * NS_PER_S for s in range(1, 31)]
    times += [i * NS_PER_S // 10 for i in range(600)]
    assert all(bucket.take(t) for t in sorted(times))


@pytest.mark.parametrize(("rate", "burst"), [(0, 5), (-1, 5), (1, 0)])
def test_bucket_refuses_nonsense_settings(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="token bucket"):
        TokenBucket(rate=rate, burst=burst)


def test_connection_cap_and_send_buffer_limit() -> None:
    assert room_for_connection(9, 10)
    assert not room_for_connection(10, 10)
    assert room_for_connection(10_000, 0)
    assert not too_slow(1024, 1024)
    assert too_slow(1025, 1024)
    assert not too_slow(10**9, 0)


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "tls", "ok"),
    [
        (None, "hub.local:8765", (), False, True),  # not a browser
        ("http://hub.local:8765", "hub.local:8765", (), False, True),
        ("http://HUB.local:8765", "hub.local:8765", (), False, True),
        ("http://hub.local", "hub.local:80", (), False, True),
        ("https://hub.local", "hub.local", (), True, True),
        ("http://hub.local:8766", "hub.local:8765", (), False, False),
        ("http://evil.example", "hub.local:8765", (), False, False),
        ("https://hub.local:8765", "hub.local:8765", (), False, True),  # scheme is not compared
        ("http://10.0.0.2:8765", "10.0.0.2:8765", (), False, True),
        ("http://[::1]:8765", "[::1]:8765", (), False, True),
        ("null", "hub.local:8765", (), False, False),
        ("null", "hub.local:8765", ("null",), False, True),
        ("https://scores.example", "hub.local:8765", ("https://scores.example",), False, True),
        ("file://", "hub.local:8765", (), False, False),
        ("http://hub.local:99999", "hub.local:99999", (), False, False),
        ("http://hub.local:8765", None, (), False, False),
    ],
)
def test_origin_rules(
    origin: str | None, host: str | None, allowed: tuple[str, ...], tls: bool, ok: bool
) -> None:
    assert origin_allowed(origin, host, allowed, tls) is ok


@pytest.mark.parametrize(
    ("path", "authorization", "token"),
    [
        ("/", None, None),
        ("/?token=abc", None, "abc"),
        ("/play?x=1&token=a%20b", None, "a b"),
        ("/?token=", None, ""),
        ("/", "Bearer xyz", "xyz"),
        ("/", "bearer   xyz  ", "xyz"),
        ("/?token=abc", "Bearer xyz", "xyz"),  # the header wins
        ("/", "Basic dXNlcjpwYXNz", None),
        ("/", "Bearer ", None),
    ],
)
def test_request_token(path: str, authorization: str | None, token: str | None) -> None:
    assert request_token(path, authorization) == token


def test_max_frame_size_fits_the_largest_client_message_with_margin() -> None:
    """The longest valid hello, with every character escaped as JSON, is under half the limit."""
    wide = "\U0001f600"  # four UTF-8 bytes; twelve as an escaped surrogate pair
    hello = msg.Hello(
        protocol=msg.PROTOCOL_VERSION,
        role="node",
        id="n" * 64,
        name=wide * msg.NAME_MAX_CHARS,
        input="keyboard",
        token="t" * msg.TOKEN_MAX_CHARS,
        team=wide * msg.NAME_MAX_CHARS,
        ref="r" * 64,
    )
    body = json.loads(codec.encode(hello))
    size = len(json.dumps(body, ensure_ascii=True).encode())
    assert isinstance(codec.decode_client(json.dumps(body, ensure_ascii=True)), codec.Decoded)
    assert size * 2 < msg.MAX_CLIENT_FRAME_BYTES


def test_security_section_checks() -> None:
    with pytest.raises(ValueError, match="both or neither"):
        SecuritySection(certfile="hub.pem")
    with pytest.raises(ValueError, match="origins"):
        SecuritySection(origins=["scores.example"])
    assert SecuritySection(certfile="a", keyfile="b").tls
    with pytest.raises(ValueError, match="hello_timeout_s"):
        LimitsSection(hello_timeout_s=0)


def test_tls_errors_name_the_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(TLSConfigError, match=r"missing\.pem"):
        server_context(missing, missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(TLSConfigError, match=r"CA file .*garbage.pem"):
        client_context(str(garbage))
    with pytest.raises(TLSConfigError, match="not a wss:// address"):
        context_for("ws://127.0.0.1:1", str(garbage))
    assert context_for("ws://127.0.0.1:1", None) is None
    assert context_for("WSS://127.0.0.1:1", None) is not None


def test_log_throttle_one_line_per_key_per_interval_then_counts_the_rest() -> None:
    throttle = LogThrottle(interval_ns=10 * NS_PER_S)
    assert throttle.allow("a", 0) == 0
    assert [throttle.allow("a", t * NS_PER_S) for t in (1, 2, 3)] == [None, None, None]
    assert throttle.allow("b", 3 * NS_PER_S) == 0  # other keys are independent
    assert throttle.allow("a", 10 * NS_PER_S) == 3
    assert throttle.allow("a", 11 * NS_PER_S) is None


def test_log_throttle_stays_bounded() -> None:
    throttle = LogThrottle(interval_ns=10 * NS_PER_S, capacity=8)
    for i in range(100):
        assert throttle.allow(i, 0) == 0
    assert len(throttle._last) <= 8
