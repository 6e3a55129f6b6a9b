"""Slow clients: a request must arrive in time, or the server answers 408 and closes the connection.

A client has ``read_timeout`` seconds (``ATTRIB_READ_TIMEOUT``) to send a request's headers, counted from
the moment its connection opens or the previous answer was sent (:class:`GuardedH11Protocol`, the HTTP
protocol `attrib serve` runs uvicorn with), and as long again for its body; past that, the body must keep
arriving at ``min_body_rate`` bytes per second on average since the request began
(``ATTRIB_MIN_BODY_RATE``), so a large upload over a slow link goes through while a client sending a byte
a second is answered 408 (:class:`BodyTimeout`). Without these, each such connection would hold a
request (and its buffers) for as long as the client liked.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import DEFAULT_READ_TIMEOUT, READ_TIMEOUT_ENV

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROTOCOL = "attrib.serve.slow_clients:GuardedH11Protocol"  # uvicorn's ``http=`` for `attrib serve`


class BodyTimeout:
    """ASGI middleware: a request body that has not fully arrived ``timeout`` seconds after the request
    began, nor at ``min_rate`` bytes per second on average since then, is answered 408 (``Connection:
    close``); whatever the app would have answered is dropped. The app sees the body as an
    ``http.disconnect`` from then on."""

    def __init__(self, app: ASGIApp, timeout: float, min_rate: int) -> None:
        self.app = app
        self.timeout = timeout
        self.min_rate = min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        began, received, complete = loop.time(), 0, False
        timed_out, started = False, False

        async def timed_receive() -> Message:
            nonlocal received, complete, timed_out
            if complete or timed_out:
                return await receive() if complete else {"type": "http.disconnect"}
            # past the timeout the body may take as long as its bytes at the minimum rate
            left = began + max(self.timeout, received / self.min_rate) - loop.time()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(left, 0.0))
            except asyncio.TimeoutError:
                timed_out = True
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out and not started:
                return  # the app's answer to a body that never came: the 408 below replaces it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not timed_out or started:
                raise  # what the app raised on a body that never came is answered below
        if timed_out and not started:
            await send_json(send, 408, {"detail": self.detail(received)}, close=True)

    def detail(self, received: int) -> str:
        return (f"the request body did not arrive in time ({received:,} bytes received; after {self.timeout:g} s "
                f"the body must arrive at {self.min_rate:,} bytes/s or more): send it faster (the server's "
                "ATTRIB_READ_TIMEOUT and ATTRIB_MIN_BODY_RATE set these limits)")


async def send_json(send: Send, status: int, payload: dict[str, Any], close: bool = False,
                    headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer ``payload`` as JSON with ``status`` (and ``Connection: close`` when ``close``)."""
    body = json.dumps(payload).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]
    if close:
        head.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def read_timeout() -> float:
    """``ATTRIB_READ_TIMEOUT`` in seconds (the default when unset or not a positive number: the command
    line has refused a bad value before any worker started)."""
    try:
        value = float(os.environ.get(READ_TIMEOUT_ENV, "").strip() or DEFAULT_READ_TIMEOUT)
    except ValueError:
        return DEFAULT_READ_TIMEOUT
    return value if value > 0 else DEFAULT_READ_TIMEOUT


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose next request's headers have not all arrived
    :func:`read_timeout` seconds after it opened or after its previous answer was sent (uvicorn's own
    keep-alive timer restarts with every byte, so a client trickling bytes would hold it for ever; so
    would one trickling the rest of a body its answer did not need)."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_headers(after=None)

    def on_response_complete(self) -> None:
        answered = self.cycle  # before a pipelined request, started by uvicorn below, replaces it
        super().on_response_complete()
        if not self.transport.is_closing():
            self._expect_headers(after=answered)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def _expect_headers(self, after: Any) -> None:
        """Close the connection unless a request after ``after`` (the request/response cycle last answered,
        None for none) has begun within the read timeout."""
        if self._header_timer is not None:
            self._header_timer.cancel()

        def check() -> None:
            if self.cycle is after and not self.transport.is_closing():
                self.transport.close()

        self._header_timer = self.loop.call_later(read_timeout(), check)
