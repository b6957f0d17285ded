"""Who may connect: a browser's origin, and the token an upgrade request carries."""

from __future__ import annotations

import pytest

from hub.auth import origin_allowed, request_token


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
