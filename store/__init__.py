"""The SQL store: tables, the batching writer actor, and the reads (docs/architecture.md "Store").

``open_store(url)`` returns a :class:`SqlStore`; start ``SqlStore.run`` (the writer actor) in
the service's root nursery, hand the store to the actors as their ``Recorder``, and ``close`` it
after the writer has stopped. Only this package imports SQLModel/SQLAlchemy.
"""

from __future__ import annotations

from orchestrator.read_models import AgentView as AgentView
from orchestrator.read_models import CallView as CallView
from orchestrator.read_models import EventView as EventView
from orchestrator.read_models import LegView as LegView
from orchestrator.read_models import OutboxView as OutboxView
from store.sqlstore import READ_THREADS as READ_THREADS
from store.sqlstore import SqlStore as SqlStore
from store.sqlstore import open_store as open_store

__all__ = [
    "READ_THREADS",
    "AgentView",
    "CallView",
    "EventView",
    "LegView",
    "OutboxView",
    "SqlStore",
    "open_store",
]
