"""Connection guards uvicorn lacks: a deadline and a size cap on the request head.

uvicorn times out idle keep-alive connections but not a connection that opens and then sends its
request line and headers one byte at a time (slowloris), nor one whose headers never end. Such
connections would hold a socket each, forever. :func:`guarded_protocol` returns an
``HttpToolsProtocol`` subclass that closes a connection whose request head is not complete within
``head_timeout_s`` of its first byte (or of the connection opening), and answers 431 to a head
larger than ``max_head_bytes``. Bodies are bounded by the app (size limit and read deadline).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\ncontent-length: 38\r\nconnection: close\r\n\r\n"
    b'{"error":"request_headers_too_large"}\n'
)


def guarded_protocol(head_timeout_s: float, max_head_bytes: int) -> type[HttpToolsProtocol]:
    """An ``HttpToolsProtocol`` class enforcing the given request-head deadline and size cap."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_timer: asyncio.TimerHandle | None = None
            self._head_bytes = 0
            self._in_head = True

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                self._head_bytes += len(data)
                if self._head_timer is None:
                    self._arm_head_timer()
            super().data_received(data)
            # Checked after parsing: a complete head followed by body bytes is fine.
            if self._in_head and self._head_bytes > max_head_bytes and self.transport:
                self._disarm_head_timer()
                if not self.transport.is_closing():
                    self.transport.write(_431)
                    self.transport.close()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._disarm_head_timer()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # The next request's head starts now; keep-alive idleness has its own timer, so the
            # head deadline is armed at that request's first byte (see data_received).
            self._in_head = True
            self._head_bytes = 0

        def _arm_head_timer(self) -> None:
            self._disarm_head_timer()
            self._head_timer = self.loop.call_later(head_timeout_s, self._head_timed_out)

        def _disarm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self._in_head and self.transport and not self.transport.is_closing():
                self.transport.close()

    return GuardedHttpToolsProtocol
