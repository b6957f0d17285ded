"""Plain HTTP on the hub's port: health check, read-only JSON state, and the web pages.

The websockets server hands every request to :func:`respond` before the WebSocket handshake.
WebSocket upgrades pass through untouched; anything else is answered here, so the hub needs only
one port and no separate web server.
"""

from __future__ import annotations

import io
import ipaddress
import json
import re
from collections.abc import Awaitable, Callable
from enum import StrEnum
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import segno
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from hub import exports
from hub.auth import request_token, tokens_match
from wire.browse import lan_addresses
from wire.messages import MatchReport

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

#: The pages load only their own files and talk only to this hub: an event LAN has no internet,
#: and a page that tried to fetch a font or script from elsewhere would hang or look broken there.
PAGE_POLICY = (
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

#: Friendly paths for the pages in hub/web/.
PAGES = {"/": "host.html", "/host": "host.html", "/screen": "screen.html", "/play": "play.html"}


def _response(status: HTTPStatus, content_type: str, body: bytes) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ]
    )
    if content_type.startswith("text/html"):
        headers["Content-Security-Policy"] = PAGE_POLICY
    return Response(status.value, status.phrase, headers, body)


def json_response(data: Any, status: HTTPStatus = HTTPStatus.OK) -> Response:
    return _response(status, "application/json", json.dumps(data).encode())


def csv_download(text: str, filename: str) -> Response:
    """A CSV file the browser saves under ``filename`` and a spreadsheet opens."""
    return download(text, "text/csv; charset=utf-8", filename)


def download(content: str | bytes, content_type: str, filename: str) -> Response:
    """A file the browser saves under ``filename``."""
    body = content.encode() if isinstance(content, str) else content
    response = _response(HTTPStatus.OK, content_type, body)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def text_response(text: str, status: HTTPStatus) -> Response:
    return _response(status, "text/plain; charset=utf-8", (text + "\n").encode())


def static_file(name: str) -> Response | None:
    """A file from the package's web folder, or None if there is no such file."""
    if "/" in name or name.startswith("."):
        return None
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix not in _CONTENT_TYPES:
        return None
    resource = resources.files("hub") / "web" / name
    if not resource.is_file():
        return None
    return _response(HTTPStatus.OK, _CONTENT_TYPES[suffix], resource.read_bytes())


#: A Host header as browsers send it: a name, IPv4 or [IPv6] address, and an optional port.
_HOST_HEADER = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?")


def _split_host(host: str) -> tuple[str, str]:
    """A Host header's name or address, and its ``:port`` part ("" if none)."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest
    name, colon, port = host.partition(":")
    return name, colon + port


def is_loopback_host(host: str) -> bool:
    name = _split_host(host)[0].lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def join_info(host: str, scheme: str, lan: list[str]) -> dict[str, Any]:
    """What the big screen needs to know about its join code: whether it was opened on the hub
    itself (``localhost``: a code phones cannot use), and the player page at each of the hub's
    LAN addresses, to offer instead."""
    port = _split_host(host)[1]
    return {
        "loopback": is_loopback_host(host),
        "lan": [f"{scheme}://{address}{port}/play" for address in lan],
    }


def join_qr(host: str | None, scheme: str, lan: list[str] | None = None) -> Response:
    """A QR code (SVG) of the player page's address, for the big screen.

    The address is the one the requesting browser used to reach the hub (its ``Host`` header),
    so it is the LAN address the audience's phones can reach too, not whatever the hub guesses
    about its own interfaces. A screen opened on the hub itself (``localhost``) asks for one of
    the hub's LAN addresses instead, as ``?host=``; only those are accepted, so the hub draws
    codes of itself and nothing else. Made here, not by an online service: event LANs have no
    internet.
    """
    if host is None or not _HOST_HEADER.fullmatch(host):
        return text_response("bad Host header", HTTPStatus.BAD_REQUEST)
    if lan is not None and _split_host(host)[0] not in lan:
        return text_response("not one of the hub's LAN addresses", HTTPStatus.BAD_REQUEST)
    code = segno.make(f"{scheme}://{host}/play", error="m", micro=False)
    out = io.BytesIO()
    code.save(out, kind="svg", scale=8, border=4, dark="#000", light="#fff", xmldecl=False)
    return _response(HTTPStatus.OK, _CONTENT_TYPES[".svg"], out.getvalue())


def _lan_hosts() -> list[str]:
    return sorted({lan.address for lan in lan_addresses()}, key=ipaddress.IPv4Address)


def is_websocket_upgrade(request: Request) -> bool:
    return "websocket" in request.headers.get("Upgrade", "").lower()


class Access(StrEnum):
    """What a plain HTTP request may read, by the token it carries (URL or header)."""

    HOST = "host"  # the host token: everything
    PUBLIC = "public"  # a node token, or none needed: results, without host-only detail
    CLOSED = "closed"  # a node token is set and none came: only whether one is needed


#: Rounds per page of /api/history.
HISTORY_PAGE = 10

TOKEN_NEEDED = (
    "this hub needs a token to read results: add ?token=... or an 'Authorization: Bearer' header"
)


def json_bytes(body: bytes) -> Response:
    return _response(HTTPStatus.OK, "application/json", body)


#: A match's result: /api/match.qbj, .csv or .json (?match=N, default the match on or the last).
_MATCH_PATH = re.compile(r"/api/match\.(qbj|csv|json)")


class Routes:
    """Answers the plain HTTP requests.

    ``state(access)`` gives the JSON picture (already encoded) a request with that access may
    read; ``history(access, before)`` a page of earlier rounds; ``access(request)`` tells which
    the request has; ``match_report`` a match's result (None: the match on, or the last one).
    """

    def __init__(
        self,
        state: Callable[[Access], Awaitable[bytes]],
        results_csv: Callable[[], str] | None = None,
        scheme: str = "http",
        access: Callable[[Request], Access] = lambda request: Access.HOST,
        history: Callable[[Access, int], bytes] | None = None,
        match_report: Callable[[int | None], MatchReport | None] | None = None,
        host_token: str = "",
        lan: Callable[[], list[str]] | None = None,
    ) -> None:
        self.state = state
        self.results_csv = results_csv
        self.scheme = scheme  # how browsers reach the pages: http, or https with TLS
        self.access = access
        self.history = history
        self.match_report = match_report
        self.host_token = host_token
        self.lan = lan or _lan_hosts  # the hub's LAN addresses, read at each request

    def __call__(
        self, connection: ServerConnection, request: Request
    ) -> Response | Awaitable[Response] | None:
        if is_websocket_upgrade(request):
            return None
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return text_response("ok", HTTPStatus.OK)
        if path == "/api/state":
            return self._state(self.access(request))
        if path == "/api/history" and self.history is not None:
            access = self.access(request)
            if access is Access.CLOSED:
                return text_response(TOKEN_NEEDED, HTTPStatus.UNAUTHORIZED)
            before = parse_qs(urlsplit(request.path).query).get("before", [""])[0]
            if not before.isdigit() or len(before) > 18:
                return text_response("before=N: a round number", HTTPStatus.BAD_REQUEST)
            return json_bytes(self.history(access, int(before)))
        if path == "/play.svg":
            query = parse_qs(urlsplit(request.path).query)
            if "host" in query:  # a screen on the hub itself, asking for a LAN address's code
                return join_qr(query["host"][0], self.scheme, self.lan())
            return join_qr(request.headers.get("Host"), self.scheme)
        if path == "/api/join":
            host = request.headers.get("Host")
            if host is None or not _HOST_HEADER.fullmatch(host):
                return text_response("bad Host header", HTTPStatus.BAD_REQUEST)
            return json_response(join_info(host, self.scheme, self.lan()))
        if path == "/api/rounds.csv" and self.results_csv is not None:
            if self.access(request) is Access.CLOSED:
                return text_response(TOKEN_NEEDED, HTTPStatus.UNAUTHORIZED)
            return csv_download(self.results_csv(), "buzzer-results.csv")
        wanted = _MATCH_PATH.fullmatch(path)
        if wanted is not None and self.match_report is not None:
            return self.match_download(request, wanted.group(1))
        page = static_file(PAGES.get(path, path.removeprefix("/")))
        if page is not None:
            return page
        return text_response(f"not found: {path[:100]}", HTTPStatus.NOT_FOUND)

    async def _state(self, access: Access) -> Response:
        return json_bytes(await self.state(access))

    def match_download(self, request: Request, kind: str) -> Response:
        """A match's result for the host: the host token is required (``?token=`` or
        ``Authorization: Bearer``), as for every host action; the result names the players."""
        token = request_token(request.path, request.headers.get("Authorization"))
        if not tokens_match(token, self.host_token):
            return text_response(
                "the host token is needed: add ?token=TOKEN, or send Authorization: Bearer TOKEN",
                HTTPStatus.UNAUTHORIZED,
            )
        query = parse_qs(urlsplit(request.path).query)
        number: int | None = None
        if "match" in query:
            text = query["match"][0]
            if not text.isdigit():
                return text_response(
                    f"match must be a number, not {text[:20]!r}", HTTPStatus.BAD_REQUEST
                )
            number = int(text)
        assert self.match_report is not None
        report = self.match_report(number)
        if report is None:
            which = "no match has been played yet" if number is None else f"no match {number}"
            return text_response(which, HTTPStatus.NOT_FOUND)
        content_type, suffix, write = exports.FORMATS[kind]
        return download(write(report), content_type, exports.filename(report, suffix))
