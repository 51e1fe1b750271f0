"""How the demo looks: a live progress table while it runs, then the summary. rich only.

Every function here turns already-computed values (:mod:`.progress`, :mod:`.summary`) into
rich renderables or prints them; nothing here decides whether the demo passed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from commands.demo.progress import Snapshot
from commands.demo.summary import CallReport, OutcomeStat, ScenarioStat


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def live_view(snap: Snapshot) -> RenderableType:
    """The batch now: one row per scenario, a bar, and the simulator's counters."""
    table = Table(
        title="orchestrator demo: calls in progress", title_justify="left", box=box.SIMPLE_HEAVY
    )
    for name in ("scenario", "plan", "expected"):
        table.add_column(name)
    for name in ("placed", "routing", "finished", "ok", "wrong"):
        table.add_column(name, justify="right")
    for row in snap.rows:
        table.add_row(
            row.scenario.name,
            row.scenario.mode,
            row.scenario.expected_label,
            f"{row.placed}/{row.planned}",
            str(row.routing),
            str(row.finished),
            Text(str(row.as_expected), style="green" if row.as_expected else ""),
            Text(str(row.unexpected), style="bold red" if row.unexpected else ""),
        )
    bar = ProgressBar(total=max(snap.planned, 1), completed=snap.finished, width=50)
    status = Text(
        f" {snap.finished}/{snap.planned} finished · simulator: {snap.simulator_live} live "
        f"calls, {snap.simulator_placed} placed · {snap.elapsed_s:.1f} s"
    )
    line = Table.grid()
    line.add_row(bar, status)
    return Group(table, line)


def outcome_table(stats: Sequence[OutcomeStat]) -> Table:
    table = Table(title="By outcome", title_justify="left", box=box.SIMPLE_HEAVY)
    table.add_column("outcome")
    table.add_column("calls", justify="right")
    table.add_column("mean time to connect", justify="right")
    table.add_column("legs per call", justify="right")
    for stat in stats:
        table.add_row(
            stat.outcome,
            str(stat.calls),
            _seconds(stat.mean_time_to_connect_s),
            _number(stat.legs_per_call),
        )
    return table


def scenario_table(stats: Sequence[ScenarioStat]) -> Table:
    table = Table(
        title="By scenario: expected vs actual outcome (Agent1ID)",
        title_justify="left",
        box=box.SIMPLE_HEAVY,
    )
    for name in ("scenario", "plan", "calls", "expected", "actual", "tiers", "legs", "ok"):
        table.add_column(name, justify="right" if name in ("calls", "legs") else "left")
    for stat in stats:
        s = stat.scenario
        actual = ", ".join(
            label if n == stat.calls else f"{n}× {label}" for label, n in stat.actual.most_common()
        )
        ok = stat.as_expected == stat.calls
        table.add_row(
            s.name,
            s.mode,
            str(stat.calls),
            s.expected_label,
            Text(actual, style="" if ok else "bold red"),
            stat.tiers_tried,
            _number(stat.legs_per_call),
            Text(f"{stat.as_expected}/{stat.calls}", style="green" if ok else "bold red"),
        )
    return table


def scenario_legend(stats: Sequence[ScenarioStat]) -> Group:
    """What each scenario does, and what the plan modes mean."""
    lines = [Text(f"  {stat.scenario.name}: {stat.scenario.description}") for stat in stats]
    lines.append(
        Text(
            "  outcome: connected→Agent1ID of the winner; voicemail posts Agent1ID 0, "
            "hung_up 999999",
            style="dim",
        )
    )
    lines.append(
        Text(
            "  plan: sync = in the Step 1 response body; async = POSTed to "
            "/responsecollect.aspx; tiers: the tiers dialled",
            style="dim",
        )
    )
    return Group(*lines)


def print_summary(
    console: Console,
    *,
    reports: Sequence[CallReport],
    outcomes: Sequence[OutcomeStat],
    scenarios: Sequence[ScenarioStat],
    problems: Sequence[str],
    log_path: Path,
    log_lines: int,
    log_warnings: Counter[str],
    db_path: Path,
    elapsed_s: float,
    interrupted: bool = False,
) -> None:
    """The end of the run: both tables, what went wrong, where the files are, the verdict."""
    console.print()
    console.print(outcome_table(outcomes))
    console.print(scenario_table(scenarios))
    console.print(scenario_legend(scenarios))
    if problems:
        console.print(Text("What went wrong:", style="bold red"))
        for problem in problems:
            console.print(Text(f"  - {problem}"))
    console.print(f"JSON logs ({log_lines} lines): {log_path}")
    console.print(f"SQLite database: {db_path}")
    if log_warnings:
        top = ", ".join(f"{event} ×{n}" for event, n in log_warnings.most_common(6))
        console.print(
            Text(
                f"Warnings/errors in the log: {sum(log_warnings.values())} ({top})", style="yellow"
            )
        )
    right = sum(1 for r in reports if not r.problems())
    if interrupted:
        console.print(
            Text(
                f"INTERRUPTED: {right}/{len(reports)} placed calls as expected ({elapsed_s:.1f} s)",
                style="bold yellow",
            )
        )
    elif problems:
        console.print(
            Text(
                f"FAILED: {right}/{len(reports)} calls as expected, {len(problems)} problems "
                f"({elapsed_s:.1f} s)",
                style="bold red",
            )
        )
    else:
        console.print(
            Text(
                f"OK: {right}/{len(reports)} calls as expected, no live call left in the "
                f"simulator ({elapsed_s:.1f} s)",
                style="bold green",
            )
        )
