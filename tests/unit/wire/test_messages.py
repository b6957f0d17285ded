"""The messages' own limits."""

from __future__ import annotations

import json

from wire import codec
from wire import messages as msg


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
