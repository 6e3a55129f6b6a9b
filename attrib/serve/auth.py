"""Who may call what: writes need the bearer token (``ATTRIB_TOKEN``), reads only with ``auth_reads``.

The token is checked from the request's headers before any of its body is read (:class:`TokenGate`, ASGI
middleware, in front of FastAPI, which parses a form before it runs a route's dependencies), so a client
without it cannot make the server receive and parse an upload. The route dependency (:func:`token_guard`)
checks it again and is what the OpenAPI description shows: a route needing the token carries the
``HTTPBearer`` security requirement, an open one (:func:`open_access`) carries none.
"""

import hmac
from typing import Annotated, Callable, Iterable

from fastapi import Depends, HTTPException
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from .settings import TOKEN_ENV
from .slow_clients import send_json

Guard = Callable[..., None]


def refusal(token: str | None, authorization: bytes | None) -> tuple[int, str] | None:
    """(status, detail) refusing a request with this ``Authorization`` header when the server's token is
    ``token`` (None: no token set, so nothing needing one is allowed); None when it may go on."""
    if token is None:
        return 403, (f"writes are turned off: set {TOKEN_ENV} where `attrib serve` runs, and send it as "
                     "`Authorization: Bearer TOKEN`")
    scheme, _, given = (authorization or b"").strip().partition(b" ")
    if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), token.encode()):
        return 401, "missing or wrong bearer token; send `Authorization: Bearer TOKEN`"
    return None


def token_guard(token: str | None) -> Guard:
    """The dependency of a route that needs the token (documented as ``HTTPBearer`` in OpenAPI). (This module
    keeps its annotations evaluated: FastAPI reads the dependency's from the function itself.)"""
    bearer = HTTPBearer(auto_error=False, description=f"The server's {TOKEN_ENV}.")

    def needs_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        header = f"{credentials.scheme} {credentials.credentials}".encode() if credentials else None
        problem = refusal(token, header)
        if problem is not None:
            status, detail = problem
            raise HTTPException(status, detail, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)

    return needs_token


def open_access() -> None:
    """The dependency of a route anyone may call (no security requirement in OpenAPI)."""


def guarded(routes: Iterable[BaseRoute], guard: Guard) -> list[APIRoute]:
    """The routes among ``routes`` that depend on ``guard``."""
    return [route for route in routes if isinstance(route, APIRoute)
            and any(dependency.call is guard for dependency in route.dependant.dependencies)]


class TokenGate:
    """ASGI middleware: a request for one of ``routes()`` (the routes that need the token, looked up on the
    first request) without the right token is answered 401 or 403 from its headers alone; its body is never
    read (the server discards it, and closes the connection when it is larger than ``max_body`` or of no
    declared length)."""

    def __init__(self, app: ASGIApp, token: str | None, routes: Callable[[], list[APIRoute]], max_body: int) -> None:
        self.app = app
        self.token = token
        self.routes = routes
        self.max_body = max_body
        self._guarded: list[APIRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._needs_token(scope):
            headers = dict(scope.get("headers") or ())
            problem = refusal(self.token, headers.get(b"authorization"))
            if problem is not None:
                status, detail = problem
                length = headers.get(b"content-length", b"0" if b"transfer-encoding" not in headers else b"")
                close = not length.isdigit() or int(length) > self.max_body
                await send_json(send, status, {"detail": detail}, close=close,
                                headers=[(b"www-authenticate", b"Bearer")] if status == 401 else None)
                return
        await self.app(scope, receive, send)

    def _needs_token(self, scope: Scope) -> bool:
        if self._guarded is None:
            self._guarded = self.routes()
        return any(route.matches(scope)[0] is Match.FULL for route in self._guarded)
