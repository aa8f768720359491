"""Raw ASGI answers for the ingest endpoint: responses, and the lingering close after a refusal.

The ingest route (``collector/app.py``) is a plain ASGI endpoint, so it sends
its own ``http.response.*`` messages: :func:`respond` for a whole answer.

A refusal sent before the body was read (413 by ``Content-Length``, 401, 429,
415, a 413 part-way through the body) is a *lingering close*, as nginx does it
(:func:`respond_lingering`): the response goes out first, then the rest of the
body is read and discarded, at most :data:`DRAIN_MAX_BYTES` bytes or
:data:`DRAIN_MAX_S` seconds, then the connection closes. Closing with unread
bytes instead makes the kernel send a reset, and a client still writing its
body gets a broken pipe, not the 413. :class:`BodyReceive` tells whether
unread bytes are left.

Example::

    request = BodyReceive(receive)
    ...                                   # a refusal before the body was read
    if not request.ended:
        await respond_lingering(send, request, 413, body, [], DRAIN_MAX_BYTES, DRAIN_MAX_S)
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import MutableMapping
from typing import Any

from collector.validation import Receive

Scope = MutableMapping[str, Any]
Send = Any  # ASGI send callable
Headers = list[tuple[bytes, bytes]]

DRAIN_MAX_BYTES = 16 << 20
"""At most this many body bytes are read and discarded after an early refusal."""
DRAIN_MAX_S = 5.0
"""... and for at most this long (uvicorn's own keep-alive timeout), whichever comes first."""


def retry_after(seconds: float) -> bytes:
    """A ``Retry-After`` value: whole seconds, rounded up, at least 1.

    >>> retry_after(0.2), retry_after(2.5)
    (b'1', b'3')
    """
    return str(max(1, math.ceil(seconds))).encode()


def response_headers(body: bytes, extra: Headers) -> Headers:
    """``content-length``, then ``extra``, then a JSON ``content-type`` when there is a body."""
    headers = [(b"content-length", b"%d" % len(body)), *extra]
    if body:
        headers.append((b"content-type", b"application/json"))
    return headers


async def respond(send: Send, status: int, body: bytes, extra: Headers) -> None:
    """Send one whole response (JSON ``body``, maybe empty)."""
    await send({"type": "http.response.start", "status": status, "headers": response_headers(body, extra)})
    await send({"type": "http.response.body", "body": body})


async def respond_lingering(
    send: Send, request: Receive, status: int, body: bytes, extra: Headers, max_bytes: int, max_s: float,
) -> None:
    """Send the whole response, drain the unread body (bounded), then let the server close.

    The body bytes go out with ``more_body`` so that a client reading while it
    writes sees the response at once; the final empty chunk, sent after the
    drain, is what makes uvicorn close the connection (``connection: close``).
    """
    await send({"type": "http.response.start", "status": status,
                "headers": response_headers(body, [(b"connection", b"close"), *extra])})
    await send({"type": "http.response.body", "body": body, "more_body": True})
    await drain(request, max_bytes, max_s)
    await send({"type": "http.response.body", "body": b""})


class BodyReceive:
    """The request's ASGI ``receive``, remembering whether the body has ended.

    A refusal needs to know whether unread body bytes are left to drain.
    """

    __slots__ = ("ended", "receive")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.ended = False

    async def __call__(self) -> MutableMapping[str, Any]:
        message = await self.receive()
        if not message.get("more_body", False):  # the last chunk, or a disconnect
            self.ended = True
        return message


async def drain(receive: Receive, max_bytes: int, max_s: float) -> bool:
    """Read and discard the rest of a request body; True when it ended within the bounds.

    Use after answering a request whose body was not read, before the connection
    closes (a lingering close). Stops after ``max_bytes`` bytes or ``max_s``
    seconds, whichever comes first; the close then resets a client still writing.

    Example::

        await drain(receive, 16 << 20, 5.0)
    """
    seen = 0
    try:
        async with asyncio.timeout(max_s):
            while seen <= max_bytes:
                message = await receive()
                if message["type"] != "http.request":  # the client went away: nothing left
                    return True
                seen += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return True
    except TimeoutError:
        pass
    return False
