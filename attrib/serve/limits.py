"""Request limits: the body size (an ASGI middleware, answering 413 before the app parses anything),
the pixels of one uploaded image and of all the images of one request (read from their headers, before
any pixel is decoded), and the decoded pixels a worker holds at once (:class:`PixelAllowance`). So the
decoded pixels of a worker stay within the larger of the request limit and the allowance, whatever
its clients send at once."""

from __future__ import annotations

import io
import json
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from PIL import Image

from ..images import PILLOW_FORMATS

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware: a request whose body is over ``limit`` bytes (by its Content-Length, or by what
    arrives when there is none) is answered 413 and never reaches the app. A body within its declared
    Content-Length streams through untouched (the server delivers no more than that); one without is
    read here first and handed on, so the app sees it unchanged."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.limit:
                await self._refuse(send)
            else:
                await self.app(scope, receive, send)
            return
        parts, total, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            part = message.get("body", b"")
            total += len(part)
            if total > self.limit:
                await self._refuse(send)
                return
            parts.append(part)
            more = message.get("more_body", False)
        body, delivered = b"".join(parts), False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        detail = (f"request body is over the {self.limit:,}-byte limit; send fewer or smaller images "
                  "(the server's ATTRIB_MAX_REQUEST_BYTES sets the limit)")
        payload = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})


def pixel_problem(name: str, data: bytes, limit: int) -> tuple[str | None, int]:
    """(why the image ``data`` (uploaded as ``name``) is over ``limit`` pixels, or None; its pixels), judged
    from its header; (None, 0) when the header cannot be read (the loader then answers with its own
    one-line error)."""
    try:
        with Image.open(io.BytesIO(data), formats=PILLOW_FORMATS) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        return f"{name}: image is too large to decode safely (decompression-bomb limit)", 0
    except Exception:  # noqa: BLE001 -- an unreadable header is the loader's to report
        return None, 0
    if width * height <= limit:
        return None, width * height
    return (f"{name}: {width}x{height} pixels is over the {limit:,}-pixel limit per image "
            "(the server's ATTRIB_MAX_IMAGE_PIXELS sets it)"), width * height


def request_pixel_problem(total: int, images: int, limit: int) -> str | None:
    """Why the ``images`` of one request, holding ``total`` pixels, are over the ``limit`` for one request, or
    None."""
    if total <= limit:
        return None
    return (f"the {images} image{'s' if images != 1 else ''} of this request hold {total:,} pixels together, over "
            f"the {limit:,}-pixel limit per request; send fewer or smaller images per request (the server's "
            "ATTRIB_MAX_REQUEST_PIXELS sets it)")


class PixelAllowance:
    """The decoded pixels one worker holds at once for the requests it is answering. A request takes
    the pixels of all its images (from their headers) before decoding any, and gives them back once
    answered; it waits while taking them would go over ``limit``, unless nothing is held (so a request
    larger than the limit runs alone). Taking all at once means no two requests wait on each other."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._changed = threading.Condition()

    @contextmanager
    def held(self, pixels: int) -> Iterator[None]:
        with self._changed:
            while self.used and self.used + pixels > self.limit:
                self._changed.wait()
            self.used += pixels
        try:
            yield
        finally:
            with self._changed:
                self.used -= pixels
                self._changed.notify_all()
