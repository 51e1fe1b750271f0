"""Memory per in-flight call: hold N calls with 5 ringing legs each, print RSS per call.

Runs the real orchestrator (supervisors, dispatchers, leg actors) against the in-memory
carrier with agents whose phones ring until we end them, so every call sits in the DIALLING
phase with five live legs while we measure. The recorder discards records (the store is not
what is measured here). Target (issue "Call actors"): under 20 KB per in-flight call.

    python -m bench.memory_bench [--calls 10000] [--legs 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import time
import tracemalloc
from collections import Counter
from collections.abc import Mapping

import trio
import trio.testing

from orchestrator.carriers.fake import AgentScript, FakeCarrier
from orchestrator.config import Campaign, RoutingSettings, Settings
from orchestrator.logs import configure_logging
from orchestrator.messages import InboundAccepted
from orchestrator.model import PlanAgent, RoutingPlan
from orchestrator.ports import CustomerReply
from orchestrator.records import Record
from orchestrator.service import Orchestrator
from store.memory_directory import MemoryDirectory


class NullRecorder:
    async def record(self, *records: Record) -> None:
        await trio.lowlevel.checkpoint()

    async def flush(self) -> None:
        await trio.lowlevel.checkpoint()


class QuietCustomer:
    async def initial_post(self, url: str, fields: Mapping[str, str]) -> CustomerReply:
        await trio.lowlevel.checkpoint()
        return CustomerReply(200, {})

    async def outcome_post(
        self,
        url: str,
        fields: Mapping[str, str],
        *,
        key: str,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        await trio.lowlevel.checkpoint()
        return 200


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def main(calls: int, legs: int, trace: bool) -> None:
    settings = Settings(
        routing=RoutingSettings(plan_timeout_s=3600, ring_timeout_s=3600, accept_timeout_s=60),
        campaigns=(
            Campaign("bench", ("8005550100",), "Purchase", "http://c.test/i", "http://c.test/o"),
        ),
    )
    phones = [f"30000{i:05d}" for i in range(calls * legs)]
    carrier = FakeCarrier(default_agent=AgentScript(ring_forever=True), keep_log=False)
    orchestrator = Orchestrator(
        settings,
        carrier=carrier,
        recorder=NullRecorder(),
        customer=QuietCustomer(),
        directory=MemoryDirectory(),
    )
    carrier.deliver = orchestrator.deliver
    async with trio.open_nursery() as nursery:
        await nursery.start(carrier.run)
        await nursery.start(orchestrator.run)
        # Warm up code paths and allocator pools with one call first.
        await _start(orchestrator, 0, phones[:legs])
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        before = rss_kb()
        if trace:
            tracemalloc.start(1)
            snap0 = tracemalloc.take_snapshot()
        t0 = time.perf_counter()
        for i in range(1, calls + 1):
            await _start(orchestrator, i, phones[(i - 1) * legs : i * legs])
        await trio.testing.wait_all_tasks_blocked()
        elapsed = time.perf_counter() - t0
        gc.collect()
        after = rss_kb()
        live_legs = len(carrier.live)
        print(f"calls in flight        {orchestrator.live_calls}")
        print(f"legs ringing           {live_legs} ({live_legs / calls:.1f} per call)")
        print(f"set-up time            {elapsed:.2f} s ({calls / elapsed:,.0f} calls/s)")
        print(f"RSS before / after     {before / 1024:.1f} MiB / {after / 1024:.1f} MiB")
        print(f"RSS per in-flight call {(after - before) / calls:.1f} KiB (target < 20 KiB)")
        if trace:
            snap1 = tracemalloc.take_snapshot()
            by_file: Counter[str] = Counter()
            for stat in snap1.compare_to(snap0, "filename"):
                name = stat.traceback[0].filename
                key = name.split("site-packages/")[-1] if "site-packages" in name else name
                by_file[key.split("/work/main/")[-1]] += stat.size_diff
            print("traced allocations per call, by file (top 8):")
            for name, size in by_file.most_common(8):
                print(f"  {size / calls / 1024:6.2f} KiB  {name}")
        nursery.cancel_scope.cancel()


async def _start(orchestrator: Orchestrator, i: int, phones: list[str]) -> None:
    result = orchestrator.accept_inbound(
        carrier_call_id=f"lead-{i}", from_number="9495550000", to_number="8005550100"
    )
    assert isinstance(result, InboundAccepted)
    agents = tuple(PlanAgent(1000 + n, p, 1, n + 1) for n, p in enumerate(phones))
    await orchestrator.submit_plan(RoutingPlan(result.tracking_guid, agents))
    if i % 200 == 0:
        await trio.testing.wait_all_tasks_blocked()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--legs", type=int, default=5)
    parser.add_argument("--trace", action="store_true", help="tracemalloc breakdown (slower)")
    args = parser.parse_args()
    configure_logging("warning", open(os.devnull, "wb"))  # noqa: SIM115 (lives as long as we do)
    trio.run(main, args.calls, args.legs, args.trace)
