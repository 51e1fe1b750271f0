"""Verified fakes shared by tests: a recorder that keeps records, a scripted customer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import trio

from orchestrator.ports import CustomerReply
from orchestrator.records import Record
from store.memory_directory import MemoryDirectory


@dataclass
class MemoryRecorder:
    """Implements ``Recorder``: keeps every record in order. Its ``directory`` (the call
    directory of a store) follows the records, as the SQL store's does."""

    records: list[Record] = field(default_factory=list)
    blocked_until: float = 0.0  # trio time until which writes stall (a slow database)
    directory: MemoryDirectory = field(default_factory=MemoryDirectory)

    async def record(self, *records: Record) -> None:
        await trio.sleep_until(self.blocked_until)
        self.records.extend(records)
        self.directory.observe(records)

    async def flush(self) -> None:
        await trio.sleep_until(self.blocked_until)

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [r for r in self.records if isinstance(r, kind)]


@dataclass
class FakeCustomer:
    """Implements ``Customer``: answers Step 1 with ``initial_fields`` after ``initial_delay_s``;
    Step 3 posts are kept and answered ``outcome_status``."""

    initial_fields: Mapping[str, str | list[str]] = field(default_factory=dict)
    initial_delay_s: float = 0.0
    outcome_status: int = 200
    initial_posts: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    outcome_posts: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    outcome_headers: list[dict[str, str]] = field(default_factory=list)
    outcome_arrived: trio.Event = field(default_factory=trio.Event)

    async def initial_post(self, url: str, fields: Mapping[str, str]) -> CustomerReply:
        self.initial_posts.append((url, dict(fields)))
        await trio.sleep(self.initial_delay_s)
        return CustomerReply(200, self.initial_fields)

    async def outcome_post(
        self,
        url: str,
        fields: Mapping[str, str],
        *,
        key: str,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        await trio.lowlevel.checkpoint()
        self.outcome_posts.append((url, dict(fields), key))
        self.outcome_headers.append(dict(headers or {}))
        self.outcome_arrived.set()
        return self.outcome_status
