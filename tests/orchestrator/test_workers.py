"""``serve --workers N``: each worker's settings and the configs that cannot run workers (pure)."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.config import ClusterSettings, ServerSettings, Settings, StoreSettings
from orchestrator.workers import worker_problems, worker_settings

CLUSTER = ClusterSettings(enabled=True, secret="s" * 32)
PG = StoreSettings("postgresql+psycopg://db.internal/orch")


def settings(*, bind: str = "10.0.0.5:8080", callback_url: str = "") -> Settings:
    server = ServerSettings(bind, "https://calls.example.com", callback_url=callback_url)
    return Settings(server=server, store=PG, cluster=CLUSTER)


def test_each_worker_has_its_own_port_id_and_callback_base() -> None:
    base = settings(callback_url="https://box1.calls.example.com:8443")
    w0, w3 = worker_settings(base, 0), worker_settings(base, 3)
    assert w0.server.bind == w3.server.bind == "10.0.0.5:8080"  # shared (SO_REUSEPORT)
    assert (w0.server.worker_bind, w3.server.worker_bind) == ("10.0.0.5:8081", "10.0.0.5:8084")
    assert w3.server.callback_base == "https://box1.calls.example.com:8084"
    assert w3.server.public_url == "https://calls.example.com"  # the balancer's, unchanged
    assert (w0.instance_id, w3.instance_id) == ("10.0.0.5:8080-w0", "10.0.0.5:8080-w3")
    assert w3.internal_url == "http://10.0.0.5:8084"


def test_named_instance_and_internal_host() -> None:
    base = replace(
        settings(),
        cluster=replace(CLUSTER, instance_id="box1", internal_url="http://box1.internal:9000"),
    )
    w1 = worker_settings(base, 1)
    assert w1.instance_id == "box1-w1"
    assert w1.internal_url == "http://box1.internal:8082"
    assert w1.server.callback_base == "https://calls.example.com:8082"  # public_url's host


def test_configs_that_cannot_run_workers() -> None:
    assert worker_problems(settings(), 4) == []
    assert worker_problems(replace(settings(), cluster=ClusterSettings()), 1) == []
    alone = worker_problems(replace(settings(), cluster=ClusterSettings()), 2)
    assert [p.field for p in alone] == ["cluster"]
    assert [p.field for p in worker_problems(settings(bind="127.0.0.1:0"), 2)] == ["server.bind"]
    assert [p.field for p in worker_problems(settings(bind="127.0.0.1:65535"), 2)] == [
        "server.bind"
    ]
    assert [p.field for p in worker_problems(settings(), 0)] == ["--workers"]
