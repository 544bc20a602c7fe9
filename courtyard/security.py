"""Security headers and the access log of the courtyard page (ASGI middleware).

Every response carries :data:`SECURITY_HEADERS`: a Content-Security-Policy with no
third-party origin and no script at all, no framing, no MIME sniffing, referrers only
to the site itself. Requests are logged as method, path (an invitation token
redacted), status and duration: never the client's address, a query string or a
cookie (uvicorn's own access log, which prints addresses, is switched off by
``klankkast-courtyard serve``).
"""

from __future__ import annotations

import logging
import time
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SECURITY_HEADERS", "SecurityMiddleware"]

access_log = logging.getLogger("klankkast.courtyard.access")

SECURITY_HEADERS: Final = {
    "content-security-policy": (
        "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; object-src 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # same-origin (not no-referrer): with no-referrer browsers send "Origin: null" on our
    # own form posts, which the origin check must refuse; nothing links elsewhere
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


class SecurityMiddleware:
    """ASGI middleware: security headers on every response; the access log without IPs."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [0]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = list(message.get("headers", [])) + self.headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                path = str(scope.get("path", ""))
                if "/i/" in path:
                    path = path[: path.index("/i/") + 3] + "<token>"
                access_log.info(
                    "%s %s %d %.1fms", scope.get("method"), path[:200], status[0],
                    1000 * (time.perf_counter() - t0),
                )  # fmt: skip
