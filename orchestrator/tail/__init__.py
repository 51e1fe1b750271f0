"""``orchestrator tail``: read the service's JSON log lines and show them to people.

Pure parts (no I/O): :mod:`~orchestrator.tail.entry` (parse a line),
:mod:`~orchestrator.tail.correlate` (tie carrier lines to their call),
:mod:`~orchestrator.tail.filters` (``--call``/``--campaign``/``--agent``/``--event``/
``--level``), :mod:`~orchestrator.tail.columns` (the aligned columns),
:mod:`~orchestrator.tail.timeline` (one call's story), :mod:`~orchestrator.tail.style`
(colours) and :mod:`~orchestrator.tail.views`. I/O: :mod:`~orchestrator.tail.sources`
(stdin, files, ``--follow``) and :mod:`~orchestrator.tail.runner`; the CLI arguments live in
:mod:`~orchestrator.tail.command`.
"""

from __future__ import annotations

from orchestrator.tail.columns import ColumnFormatter as ColumnFormatter
from orchestrator.tail.command import TailOptions as TailOptions
from orchestrator.tail.correlate import Correlator as Correlator
from orchestrator.tail.entry import Entry as Entry
from orchestrator.tail.entry import parse_line as parse_line
from orchestrator.tail.filters import LineFilter as LineFilter
from orchestrator.tail.timeline import Timeline as Timeline
