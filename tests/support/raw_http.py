"""A raw HTTP/1.1 client for hostile-input tests: send any bytes, read what the server answers.

The request goes out exactly as given (malformed framing, odd headers, bodies the client
library would refuse to send); the answer is parsed with h11 in the client role, primed with a
synthetic request of the same method so it knows whether a body follows. :meth:`RawConnection
.exchange` reports one of three things: a response, the connection closed without one
(dropped), or nothing within the timeout (stalled). :meth:`RawConnection.still_usable` checks
the keep-alive contract after an answer: the connection either serves a next request, or the
answer said ``Connection: close`` and the server closed it.
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, field

import h11

PROBE = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    informational: list[int] = field(default_factory=list)

    @property
    def closes(self) -> bool:
        return "close" in self.headers.get("connection", "").lower()


class Dropped(Exception):
    """The server closed (or reset) the connection without a complete answer."""


class Stalled(Exception):
    """The server neither answered nor closed within the timeout."""


class RawConnection:
    """One TCP connection to ``host:port``; use as a context manager."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self.sock = socket.create_connection((host, port), timeout=timeout_s)

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def exchange(self, raw: bytes, *, method: str = "GET") -> RawResponse:
        """Send ``raw`` and read one final response.

        Raises:
            Dropped: the connection ended before a complete response.
            Stalled: nothing complete arrived within ``timeout_s``.
        """
        # the server may have answered and closed already: read what it sent
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(raw)
        return self.read_response(method=method)

    def read_response(self, *, method: str = "GET") -> RawResponse:
        conn = h11.Connection(h11.CLIENT)
        conn.send(
            h11.Request(
                method="HEAD" if method == "HEAD" else "GET", target="/", headers=[("Host", "x")]
            )
        )
        conn.send(h11.EndOfMessage())
        deadline = time.monotonic() + self.timeout_s
        informational: list[int] = []
        response: h11.Response | None = None
        body = bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise Dropped(f"the answer was cut short: {exc}") from None
            if event is h11.NEED_DATA:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Stalled(f"no complete answer in {self.timeout_s} s")
                self.sock.settimeout(remaining)
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    raise Stalled(f"no complete answer in {self.timeout_s} s") from None
                except ConnectionResetError:
                    raise Dropped("connection reset before a complete answer") from None
                if not data and response is None:
                    raise Dropped("connection closed before any answer")
                conn.receive_data(data)
                continue
            if isinstance(event, h11.InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers
                }
                return RawResponse(response.status_code, headers, bytes(body), informational)
            elif isinstance(event, h11.ConnectionClosed):
                raise Dropped("connection closed in the middle of an answer")

    def closed_by_server(self) -> bool:
        """True once the server has closed its side (reads EOF) within ``timeout_s``."""
        self.sock.settimeout(self.timeout_s)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True

    def still_usable(self, answer: RawResponse) -> None:
        """The keep-alive contract after ``answer`` (see the module docstring).

        Raises:
            AssertionError: the connection is neither usable nor closed as announced.
        """
        if answer.closes:
            assert self.closed_by_server(), "answer said Connection: close, but it stayed open"
            return
        probe = self.exchange(PROBE)
        assert probe.status == 200, probe
