"""The checks a WebSocket upgrade must pass before the hub spends anything on it.

Runs as the websockets ``process_request`` hook, in front of :class:`hub.http.Routes`: plain HTTP
requests go straight through; an upgrade is refused with a one-line HTTP answer (503 when the hub
is full, 403 for a foreign browser origin, 401 for a wrong node token, or for a missing one when
``[security] token_before_upgrade`` is on) before any WebSocket state, task or buffer exists for
it. Each refusal is one log line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from hub.auth import origin_allowed, request_token, tokens_match
from hub.guard import peer
from hub.limits import LogThrottle, room_for_connection

log = logging.getLogger("hub.gate")

#: One refusal line per address and status this often; the next line counts the ones left out.
LOG_INTERVAL_NS = 10_000_000_000

ProcessRequest = Callable[[ServerConnection, Request], Awaitable[Response | None] | Response | None]


def _is_upgrade(request: Request) -> bool:
    return "websocket" in request.headers.get("Upgrade", "").lower()


class Gate:
    """Refuses upgrades that must not become connections; hands everything else to ``routes``."""

    def __init__(
        self,
        routes: ProcessRequest,
        *,
        open_connections: Callable[[], int],
        max_connections: int,
        node_token: str,
        host_token: str,
        origins: Sequence[str],
        tls: bool,
        token_required: bool = False,
        tokenless: Callable[[str], tuple[int, int]] | None = None,
        tokenless_per_address: int = 0,
        cooling: Callable[[str, int], int] | None = None,
    ) -> None:
        self.routes = routes
        self.open_connections = open_connections
        self.max_connections = max_connections
        self.node_token = node_token
        self.host_token = host_token
        self.origins = tuple(origins)
        self.tls = tls
        self.token_required = token_required
        self.tokenless = tokenless  # open tokenless connections: (from an address, in all)
        self.tokenless_per_address = tokenless_per_address
        self.cooling = cooling  # ns until an address dropped for flooding may come back
        self._log_throttle = LogThrottle(LOG_INTERVAL_NS)

    def __call__(
        self, connection: ServerConnection, request: Request
    ) -> Awaitable[Response | None] | Response | None:
        if _is_upgrade(request):
            address = connection.remote_address
            refusal = self.refusal(request, str(address[0]) if address else "?")
            if refusal is not None:
                status, reason = refusal
                self._log(connection, status, reason)
                response = connection.respond(status, reason + "\n")
                if status is HTTPStatus.UNAUTHORIZED:
                    response.headers["WWW-Authenticate"] = 'Bearer realm="buzzer-beater"'
                elif status is HTTPStatus.SERVICE_UNAVAILABLE:
                    response.headers["Retry-After"] = "5"
                return response
        return self.routes(connection, request)

    def _log(self, connection: ServerConnection, status: HTTPStatus, reason: str) -> None:
        address = connection.remote_address
        key = (address[0] if address else "?", status)
        left_out = self._log_throttle.allow(key, time.monotonic_ns())
        if left_out is None:
            return
        more = f" ({left_out} more from this address not logged)" if left_out else ""
        log.warning("refused %s: %d %s%s", peer(connection), status.value, reason, more)

    def refusal(self, request: Request, address: str = "?") -> tuple[HTTPStatus, str] | None:
        """Why this upgrade is refused, cheapest check first; None lets it through."""
        if not room_for_connection(self.open_connections(), self.max_connections):
            return HTTPStatus.SERVICE_UNAVAILABLE, (
                f"hub full: {self.max_connections} connections; try again later"
            )
        if self.tokenless is not None and not self._carries_a_token(request):
            # Viewers, tutorial clients and greetings not yet done get a share of the cap, per
            # address and in all, so that one machine cannot keep a host or the stations out.
            wait = self.cooling(address, time.monotonic_ns()) if self.cooling else 0
            if wait:
                return HTTPStatus.SERVICE_UNAVAILABLE, (
                    f"a client from this address was just dropped for flooding; try again in "
                    f"{-(-wait // 1_000_000_000)} s"
                )
            here, total = self.tokenless(address)
            # A quarter of the cap stays for token holders (a cap too small to split is not).
            share = self.max_connections * 3 // 4 if self.max_connections >= 16 else 0
            if self.tokenless_per_address and here >= self.tokenless_per_address:
                return HTTPStatus.SERVICE_UNAVAILABLE, (
                    f"{here} connections without a token from this address already; "
                    "close some, or connect with a token"
                )
            if share and total >= share:
                return HTTPStatus.SERVICE_UNAVAILABLE, (
                    f"hub full for connections without a token ({share}); connect with a token"
                )
        origin = request.headers.get("Origin")
        if not origin_allowed(origin, request.headers.get("Host"), self.origins, self.tls):
            shown = (origin or "")[:100]
            return HTTPStatus.FORBIDDEN, f"origin {shown!r} may not connect to this hub"
        if self.node_token:
            token = request_token(request.path, request.headers.get("Authorization"))
            if token is None and self.token_required:
                return HTTPStatus.UNAUTHORIZED, (
                    "node token required: add ?token=... or an 'Authorization: Bearer' header"
                )
            # Without one, the client must present its token in the hello (close 4401 if not).
            if token is not None and not (
                tokens_match(token, self.node_token) or tokens_match(token, self.host_token)
            ):
                return HTTPStatus.UNAUTHORIZED, "wrong token"
        return None

    def _carries_a_token(self, request: Request) -> bool:
        token = request_token(request.path, request.headers.get("Authorization"))
        if token is None:
            return False
        return tokens_match(token, self.host_token) or bool(
            self.node_token and tokens_match(token, self.node_token)
        )
