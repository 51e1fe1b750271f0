"""Where lines come from: a file descriptor (stdin, a file) or a followed file (``tail -f``).

Both yield complete lines as ``bytes`` without their newline, read in large chunks, and yield
:data:`IDLE` (``None``) whenever they are about to wait for more input: the consumer flushes
its output then, so a live tail shows lines at once without flushing after every line.

:func:`follow` survives truncation (``copytruncate``: reading restarts at the top) and
rotation (the path now names a new file: the old one is read to its end, then the new one
from its start), polling every ``poll_s`` seconds. As with ``tail -f``, truncation is seen
when the file is found shorter than what was read; a file refilled past that point between
two polls is read on from there.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 16
IDLE = None  # yielded when the source is about to wait for input


def _ready(fd: int) -> bool:
    try:
        readable, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError):  # not selectable: just read (and block)
        return True
    return bool(readable)


def read_lines(stream: BinaryIO) -> Iterator[bytes | None]:
    """Lines of ``stream`` until its end; :data:`IDLE` before every read that would block.
    A last line without a newline is yielded too. Streams with a file descriptor are read
    with ``os.read`` (whatever is available, up to :data:`CHUNK`), others with ``read``."""
    try:
        fd: int | None = stream.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation: an in-memory stream
        fd = None
    pending = b""
    while True:
        if fd is None:
            chunk = stream.read(CHUNK)
        else:
            if not _ready(fd):
                yield IDLE
            chunk = os.read(fd, CHUNK)
        if not chunk:
            break
        lines = (pending + chunk).split(b"\n") if pending else chunk.split(b"\n")
        pending = lines.pop()
        yield from lines
    if pending:
        yield pending


def start_offset(fh: BinaryIO, size: int, lines: int) -> int:
    """The byte offset where the last ``lines`` lines of the first ``size`` bytes begin."""
    if lines <= 0 or size == 0:
        return size
    fh.seek(size - 1)
    end = size - 1 if fh.read(1) == b"\n" else size  # a final newline ends the last line
    found = 0
    pos = end
    while pos > 0:
        step = min(CHUNK, pos)
        pos -= step
        fh.seek(pos)
        block = fh.read(step)
        index = len(block)
        while (index := block.rfind(b"\n", 0, index)) >= 0:
            found += 1
            if found == lines:
                return pos + index + 1
    return 0


def follow(
    path: str | Path,
    *,
    last: int | None = 10,
    poll_s: float = 0.25,
    stop: Callable[[], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes | None]:
    """Lines of ``path`` as they are appended, starting with its ``last`` lines (``None``: the
    whole file). Runs until ``stop()`` is true (checked whenever idle); raises ``OSError`` if
    ``path`` cannot be opened at the start."""
    fh: BinaryIO = open(path, "rb", buffering=0)  # noqa: SIM115 - reopened on rotation
    try:
        size = os.fstat(fh.fileno()).st_size
        fh.seek(0 if last is None else start_offset(fh, size, last))
        pending = b""
        while True:
            chunk = fh.read(CHUNK)
            if chunk:
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                yield from lines
                continue
            yield IDLE
            if stop is not None and stop():
                break
            sleep(poll_s)
            reopened = _check_moved(path, fh)
            if reopened is None:
                continue
            if reopened is fh:  # truncated in place: start again at the top
                fh.seek(0)
                pending = b""
                continue
            rest = pending + _read_all(fh)  # rotated: finish the old file, then the new one
            fh.close()
            fh = reopened
            pending = b""
            if rest:
                lines = rest.split(b"\n")
                last_piece = lines.pop()
                yield from lines
                if last_piece:
                    yield last_piece
        if pending:
            yield pending
    finally:
        fh.close()


def _read_all(fh: BinaryIO) -> bytes:
    parts = []
    while chunk := fh.read(CHUNK):
        parts.append(chunk)
    return b"".join(parts)


def _check_moved(path: str | Path, fh: BinaryIO) -> BinaryIO | None:
    """``fh`` itself if the file was truncated below our position, a new handle if ``path``
    now names another file, else None (also while the path is missing mid-rotation)."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return None
    ours = os.fstat(fh.fileno())
    if (on_disk.st_ino, on_disk.st_dev) != (ours.st_ino, ours.st_dev):
        try:
            return open(path, "rb", buffering=0)  # handed to the caller
        except FileNotFoundError:
            return None
    if ours.st_size < fh.tell():
        return fh
    return None
