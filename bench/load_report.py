"""The load benchmark's human-readable report, from its JSON figures. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["REQUIRED_FIGURES", "format_report", "problems"]

#: Figures every run reports (the smoke test checks each is present and not null).
REQUIRED_FIGURES = (
    "calls_per_s",
    "placed_per_s",
    "answer_latency_ms",
    "accept_to_cancel_ms",
    "service_cpu_ms_per_call",
    "service_one_core_calls_per_s",
    "service_rss_mib",
    "legs_left_live",
    "flow_http_per_s",
    "flow_http_per_cpu_s",
    "trivial_http_per_s",
    "trivial_http_per_cpu_s",
    "http_rate_ratio",
    "http_cpu_ratio",
)


def problems(fig: Mapping[str, Any]) -> list[str]:
    """What makes a run a failure (empty = the run is good)."""
    found = []
    if fig["calls_completed"] < fig["calls_placed"]:
        found.append(f"{fig['calls_placed'] - fig['calls_completed']} calls got no outcome")
    if fig["calls_connected"] < fig["calls_completed"]:
        found.append(
            f"{fig['calls_completed'] - fig['calls_connected']} outcomes did not name "
            "the agent who pressed 1"
        )
    if fig["legs_left_live"]:
        found.append(f"{fig['legs_left_live']} agent legs still live at the end")
    if fig["losers_uncancelled"]:
        found.append(f"{fig['losers_uncancelled']} losing legs were never cancelled/hung up")
    if fig["timed_out"]:
        found.append("the run hit its deadline before every outcome arrived")
    if fig["calls_place_failures"]:
        found.append(f"{fig['calls_place_failures']} calls could not be placed")
    if fig["duplicate_outcomes"]:
        found.append(f"{fig['duplicate_outcomes']} duplicate outcome posts")
    return found


def _ms(stats: Mapping[str, Any]) -> str:
    if not stats.get("n"):
        return "n/a (no samples)"
    return (
        f"p50 {stats['p50']:.2f} ms   p99 {stats['p99']:.2f} ms   "
        f"max {stats['max']:.2f} ms   (n={stats['n']})"
    )


def _causes(causes: Mapping[str, int]) -> str:
    return " (" + ", ".join(f"{k}: {v}" for k, v in causes.items()) + ")" if causes else ""


def format_report(fig: Mapping[str, Any]) -> str:
    setup = fig["setup"]
    machine = fig["machine"]
    lines = [
        f"load bench: {setup['calls']} calls at {setup['rate']:g}/s, time scale "
        f"{setup['time_scale']:g}, {setup['agents_per_call']} agents per call in one tier "
        f"(one presses 1), {setup['warmup_calls']} warm-up calls not counted",
        f"command:  {fig['command']}",
        f"machine:  {machine['cores']} cores ({machine['cores_usable']} usable), "
        f"{machine['cpu_model'] or 'unknown CPU'}, Python {machine['python']}, {machine['os']}; "
        f"load average {machine.get('loadavg_1m_at_start', '?')} at start; "
        f"{machine.get('loop_ns_per_iteration', '?')} ns per plain loop iteration",
        "processes: service = python -m orchestrator serve (carrier.kind=plivo -> simulator, "
        f"SQLite in a temp dir, log level {setup['service_log_level']}); simulator = python -m "
        "simulator (log level warning); this process = customer endpoint "
        "(Step 1 answers with the plan) + load driver",
        "",
        f"  calls placed / completed     {fig['calls_placed']} / {fig['calls_completed']} "
        f"(outcomes: {fig['outcome_kinds']})",
        f"  calls/s achieved             {fig['calls_per_s']:.1f} completed/s "
        f"(placed at {fig['placed_per_s']:.1f}/s)",
        f"  lead answer webhook          {_ms(fig['answer_latency_ms'])}",
        f"  accept -> cancel (per loser) {_ms(fig['accept_to_cancel_ms'])}",
        f"  service CPU per call         {fig['service_cpu_ms_per_call']:.1f} ms "
        f"(one core full at {fig.get('service_one_core_calls_per_s', 0):.1f} calls/s; "
        f"simulator {fig['simulator_cpu_ms_per_call']:.1f} ms, "
        f"bench {fig['bench_cpu_ms_per_call']:.1f} ms)",
        f"  service RSS                  {fig['service_rss_mib']:.1f} MiB "
        f"(peak {fig['service_peak_rss_mib']:.1f} MiB)",
        f"  legs left live at the end    {fig['legs_left_live']} "
        f"(calls left live: {fig['calls_left_live']}; losers never cancelled: "
        f"{fig['losers_uncancelled']}{_causes(fig['losers_uncancelled_causes'])}; "
        f"losers that declined before the accept: {fig['losers_declined_first']}; "
        f"never dialled: {fig.get('losers_never_dialled', 0)})",
        f"  HTTP in the call flow        {fig['flow_http_requests']} webhooks to the service, "
        f"{fig['flow_http_per_s']:.0f} req/s, {fig['flow_http_per_cpu_s']:.0f} req per "
        "service CPU-second",
        f"  trivial GET /healthz         {fig['trivial_http_per_s']:.0f} req/s over "
        f"{setup['trivial_connections']} connections, {fig['trivial_http_per_cpu_s']:.0f} req "
        f"per service CPU-second, {_ms(fig['trivial_latency_ms'])}",
        f"  ratio call flow / trivial    {fig['http_rate_ratio']:.3f} by req/s, "
        f"{fig['http_cpu_ratio']:.3f} by req per CPU-second",
        f"  service log warnings/errors  {fig['service_log_warnings']}",
        "",
        "  webhook latency by route (what the simulator waited for):",
    ]
    for route, stats in sorted(fig["webhook_latency_ms"].items()):
        lines.append(f"    {route:<24} {_ms(stats)}")
    bad = fig.get("problems") or []
    lines.append("")
    lines.append("result: OK" if not bad else "result: FAILED: " + "; ".join(bad))
    return "\n".join(lines)
