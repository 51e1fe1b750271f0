"""Throughput of the store's writer actor: records/s committed, for SQLite and PostgreSQL.

Usage::

    .venv/bin/python bench/store_bench.py [--calls 5000] [--producers 8]
        [--sqlite PATH] [--pg postgresql+psycopg://root@127.0.0.1:5432/test] [--no-pg]

Each simulated call is 8 records (start, state change, leg start/answer/accept, two events,
finish + outbox row), queued by ``--producers`` concurrent tasks the way call actors would,
then ``flush()``. PostgreSQL runs in a throw-away schema that is dropped afterwards. Prints one
line per database: records, seconds, records/s, batches, failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.model import CallState, InboundCall, LegResult, Outcome
from orchestrator.records import (
    CallFinished,
    CallStarted,
    CallStateChanged,
    EventLogged,
    LegStarted,
    LegUpdated,
    Record,
)
from store import SqlStore, open_store


def call_records(n: int) -> list[Record]:
    guid = f"bench-{n}"
    leg_id = f"{guid}-l1"
    call = InboundCall(guid, f"uuid-{n}", "bench", "4155550100", "8005550199", "purchase")
    return [
        CallStarted(call, at=1000.0),
        CallStateChanged(guid, CallState.DIALLING, at=1001.0),
        LegStarted(guid, leg_id, agent_id=n % 500, phone="4155550111", tier=1, row=1, at=1001.0),
        EventLogged(guid, "leg.started", at=1001.0, detail='{"tier":1}'),
        LegUpdated(guid, leg_id, at=1003.0, request_id=f"req-{n}", answered_at=1003.0),
        EventLogged(guid, "leg.answered", at=1003.0),
        LegUpdated(guid, leg_id, at=1010.0, ended_at=1090.0, result=LegResult.ACCEPTED),
        CallFinished(
            guid,
            Outcome.connected(n % 500, "https://rec.example/x.mp3"),
            0,
            "https://customer.example/outcome",
            at=1100.0,
        ),
    ]


async def measure(store: SqlStore, calls: int, producers: int) -> tuple[int, float]:
    per_producer = [
        [r for n in range(p, calls, producers) for r in call_records(n)] for p in range(producers)
    ]
    total = sum(len(records) for records in per_producer)

    async def produce(records: list[Record]) -> None:
        for record in records:
            await store.record(record)

    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        start = time.perf_counter()
        async with trio.open_nursery() as producing:
            for records in per_producer:
                producing.start_soon(produce, records)
        await store.flush()
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return total, elapsed


def report(name: str, store: SqlStore, total: int, elapsed: float) -> None:
    print(
        f"{name:<10} {total:>8} records {elapsed:7.2f} s {total / elapsed:>10,.0f} records/s"
        f"  batches={store.batches} failed={store.records_failed}"
    )


def bench_sqlite(path: str | None, calls: int, producers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = path or os.path.join(tmp, "bench.db")
        store = open_store(f"sqlite:///{db}")
        try:
            total, elapsed = trio.run(measure, store, calls, producers)
            report("sqlite", store, total, elapsed)
        finally:
            store.close()


def bench_pg(url: str, calls: int, producers: int) -> None:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    except sqlalchemy.exc.OperationalError as exc:
        print(f"postgresql skipped: {exc.orig}")
        return
    connect_args: dict[str, Any] = {"options": f"-csearch_path={schema}"}
    try:
        store = open_store(url, connect_args=connect_args)
        try:
            total, elapsed = trio.run(measure, store, calls, producers)
            report("postgresql", store, total, elapsed)
        finally:
            store.close()
    finally:
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--producers", type=int, default=8)
    parser.add_argument("--sqlite", default=None, help="database file (default: a temp file)")
    parser.add_argument(
        "--pg",
        default=os.environ.get("ORCH_TEST_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"),
    )
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    bench_sqlite(args.sqlite, args.calls, args.producers)
    if not args.no_pg:
        bench_pg(args.pg, args.calls, args.producers)


if __name__ == "__main__":
    main()
