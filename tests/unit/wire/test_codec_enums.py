"""Fields that hold one of a closed set of names: unhashable or wrong-typed values are refused
as bad fields, never raised; a list of flags drops a newer peer's flag instead of failing."""

from __future__ import annotations

import json

import pytest

from wire import codec
from wire.enums import ErrorCode


@pytest.mark.parametrize("role", [[], {}, ["node"], True, 1, None, 1.5])
def test_a_role_that_is_not_a_name_is_a_bad_field(role: object) -> None:
    result = codec.decode_client(json.dumps({"type": "hello", "protocol": 1, "role": role}))
    assert isinstance(result, codec.ProtocolError)
    assert result.code is ErrorCode.BAD_FIELD


@pytest.mark.parametrize("flag", [[], {}, 3, None])
def test_a_flag_that_is_not_a_name_is_reported_not_raised(flag: object) -> None:
    frame = {"type": "result", "round": 1, "press_id": "a", "rank": 1, "flags": [flag, "tie"]}
    result = codec.decode_hub(json.dumps({**frame, "text": "t"}))
    assert isinstance(result, codec.Decoded)
    assert result.unknown_fields == (f"flags[0]={flag}",)
