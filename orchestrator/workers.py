"""``orchestrator serve --workers N``: N instances of one config on one machine (docs/contract.md
§11, README "Running a cluster"). Pure: what each worker's settings are, and whether the config
allows workers at all.

The workers are instances of the cluster like any other, so the config needs ``[cluster]`` (and
therefore PostgreSQL). Worker ``k`` (0-based) of a config whose ``server.bind`` is ``HOST:P``:

- listens on ``HOST:P`` together with the other workers (SO_REUSEPORT: the kernel spreads the
  connections of the shared routes — the lead's answer and hangup, Step 2 — over them), and on
  its own ``HOST:P+1+k``;
- gives the carrier callback URLs on its own port: ``server.callback_url`` (or ``public_url``)
  with the port replaced by ``P+1+k`` — so that base must name this machine directly, not the
  balancer;
- is instance ``{cluster.instance_id}-w{k}`` (default ``HOST:P-w{k}``), reached by the other
  instances at ``cluster.internal_url``'s host (default ``HOST``) on port ``P+1+k``.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

from orchestrator.config import Settings
from orchestrator.errors import Problem

#: Most workers one ``serve`` starts (more is a config mistake, not a machine).
MAX_WORKERS = 64


def worker_problems(settings: Settings, count: int) -> list[Problem]:
    """Why ``settings`` cannot run as ``count`` workers (empty: it can)."""
    problems = []
    if not 1 <= count <= MAX_WORKERS:
        problems.append(Problem("--workers", f"must be 1..{MAX_WORKERS}, got {count}"))
    if count > 1 and not settings.cluster.enabled:
        problems.append(
            Problem(
                "cluster",
                "serve --workers N runs N instances on one database: the config needs a "
                "[cluster] table (and PostgreSQL)",
            )
        )
    port = settings.server.host_port[1]
    if port == 0 and count > 1:
        problems.append(Problem("server.bind", "workers need a fixed port, not 0"))
    elif port + count > 65535:
        problems.append(Problem("server.bind", f"ports {port + 1}..{port + count} do not exist"))
    return problems


def _with_port(url: str, host: str, port: int) -> str:
    parts = urlsplit(url)
    hostname = parts.hostname or host
    if ":" in hostname:  # IPv6 literal
        hostname = f"[{hostname}]"
    netloc = f"{hostname}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


def worker_settings(settings: Settings, index: int) -> Settings:
    """The settings of worker ``index`` (module docstring)."""
    server, cluster = settings.server, settings.cluster
    host, port = server.host_port
    own = port + 1 + index
    shown_host = f"[{host}]" if ":" in host else host
    callback = _with_port(server.callback_url or server.public_url, host, own)
    internal = _with_port(cluster.internal_url or f"http://{shown_host}", host, own)
    instance_id = f"{cluster.instance_id or server.bind}-w{index}"
    return replace(
        settings,
        server=replace(server, callback_url=callback, worker_bind=f"{shown_host}:{own}"),
        cluster=replace(cluster, instance_id=instance_id, internal_url=internal),
    )
