"""``orchestrator tail``: read the service's JSON log lines and show them to people.

Pure parts (no I/O): :mod:`~commands.tail.entry` (parse a line),
:mod:`~commands.tail.correlate` (tie carrier lines to their call),
:mod:`~commands.tail.filters` (``--call``/``--campaign``/``--agent``/``--event``/
``--level``), :mod:`~commands.tail.columns` (the aligned columns),
:mod:`~commands.tail.timeline` (one call's story), :mod:`~commands.tail.style`
(colours) and :mod:`~commands.tail.views`. I/O: :mod:`~commands.tail.sources`
(stdin, files, ``--follow``) and :mod:`~commands.tail.runner`; the CLI arguments live in
:mod:`~commands.tail.command`.
"""

from __future__ import annotations

from commands.tail.columns import ColumnFormatter as ColumnFormatter
from commands.tail.command import TailOptions as TailOptions
from commands.tail.correlate import Correlator as Correlator
from commands.tail.entry import Entry as Entry
from commands.tail.entry import parse_line as parse_line
from commands.tail.filters import LineFilter as LineFilter
from commands.tail.timeline import Timeline as Timeline
