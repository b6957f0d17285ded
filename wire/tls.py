"""TLS contexts for ``wss://``: the hub's server side, and the client side of nodes and ``ctl``.

Only the standard library's ssl: the hub, ``buzzer-hub ctl`` and the node firmware all use it.
Both builders turn the many ways a certificate file can be wrong into one :class:`TLSConfigError`
with a one-line message naming the file.
"""

from __future__ import annotations

import ssl

from wire.errors import TLSConfigError


def _reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def server_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """The hub's context: TLS 1.2 or newer, the given certificate chain and private key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(
            f"cannot use certificate {certfile} with key {keyfile}: {_reason(exc)}"
        ) from None
    return context


def client_context(cafile: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the system's CAs, or only ``cafile`` when one is given.

    A hub on an event LAN usually has a self-signed certificate; pointing nodes at that one file
    (instead of turning verification off) is what stops an audience laptop posing as the hub.
    Host names are checked too, so the certificate must name the address nodes connect to.
    """
    try:
        # With a cafile, the default context trusts that file alone, not the system's CAs.
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile or None)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"cannot use CA file {cafile}: {_reason(exc)}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def context_for(url: str, cafile: str | None) -> ssl.SSLContext | None:
    """The client context a hub address needs: None for ``ws://``, a verifying one for ``wss://``."""
    if url.lower().startswith("wss://"):
        return client_context(cafile)
    if cafile:
        raise TLSConfigError(f"a CA file was given but {url} is not a wss:// address")
    return None
