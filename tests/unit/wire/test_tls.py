"""TLS contexts: a certificate or CA file that cannot be used is named in the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from wire.errors import TLSConfigError
from wire.tls import client_context, context_for, server_context


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
