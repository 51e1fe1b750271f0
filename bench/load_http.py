"""A small closed-loop HTTP/1.1 load generator for a trivial endpoint (``GET /healthz``).

Each of ``connections`` keep-alive connections sends one request, reads the whole response,
and sends the next, until the time is up. Written on raw trio sockets (no httpx) so the client
costs a few tens of microseconds per request and the server, not the generator, is what
saturates. Loopback only; every response must be ``200`` with a ``Content-Length``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

__all__ = ["HammerResult", "hammer", "parse_response_head"]

_MAX_HEAD = 16 * 1024


def parse_response_head(head: bytes) -> tuple[int, int]:
    """Status code and ``Content-Length`` of a response head (without the blank line).

    >>> parse_response_head(b"HTTP/1.1 200 \\r\\ncontent-length: 16\\r\\nx: y")
    (200, 16)

    Raises:
        ValueError: not an HTTP/1.x status line, or no Content-Length.
    """
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.x response: {lines[0]!r}")
    status = int(parts[1])
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return status, int(value.strip())
    raise ValueError("response without Content-Length")


@dataclass
class HammerResult:
    requests: int = 0  # answered 200
    errors: int = 0  # other statuses, broken connections
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0


async def _one_connection(
    host: str, port: int, request: bytes, deadline: float, result: HammerResult
) -> None:
    try:
        stream = await trio.open_tcp_stream(host, port)
    except OSError:
        result.errors += 1
        return
    buffer = bytearray()
    async with stream:
        while trio.current_time() < deadline:
            sent = trio.current_time()
            try:
                await stream.send_all(request)
                while (end := buffer.find(b"\r\n\r\n")) < 0:
                    if len(buffer) > _MAX_HEAD:
                        raise ValueError("response head too long")
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        raise trio.BrokenResourceError("connection closed")
                    buffer += chunk
                status, length = parse_response_head(bytes(buffer[:end]))
                total = end + 4 + length
                while len(buffer) < total:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        raise trio.BrokenResourceError("connection closed")
                    buffer += chunk
                del buffer[:total]
            except (trio.BrokenResourceError, ValueError, OSError):
                result.errors += 1
                return
            if status == 200:
                result.requests += 1
                result.latencies_ms.append((trio.current_time() - sent) * 1000)
            else:
                result.errors += 1


async def hammer(
    host: str,
    port: int,
    path: str = "/healthz",
    *,
    connections: int = 32,
    duration_s: float = 3.0,
) -> HammerResult:
    """Send ``GET path`` over ``connections`` connections for ``duration_s``; count answers."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    result = HammerResult()
    started = trio.current_time()
    deadline = started + duration_s
    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(_one_connection, host, port, request, deadline, result)
    result.elapsed_s = trio.current_time() - started
    return result
