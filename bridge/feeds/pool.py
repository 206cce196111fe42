"""Reading documents on every core: a pool of worker processes that parse and prepare (prepare.py) while the
poll's own process fetches and records. A cold first poll of thousands of feeds is mostly parsing; in one
process it used one core.

The pool starts only when a poll has many documents to read (a steady cycle of 304s, or a timer's pass that
finds a few changes, never pays for starting it). Anything a worker cannot hand back -- a document that does
not parse (its error is raised by reading it again here, so it is the very same), a worker that died -- is read
in this process instead: a worker never costs a feed. What a worker logs is passed back and logged here, so
the log stays one stream with one format.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .prepare import PreparedFeed, read_document

log = logging.getLogger("bridge.feeds")

# Documents read inline before the pool is started: below this a poll is over before workers would be up.
START_AFTER = 64
# A worker's young-generation threshold (Python's default is 700): a document makes tens of thousands of objects.
GC_YOUNG_OBJECTS = 20_000


def worker_count() -> int:
    """One worker per core the process may use; none on a single core, where they would only take turns."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return cores if cores > 1 else 0


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # As logging.handlers.QueueHandler.prepare: the message formatted here, nothing unpicklable sent back.
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        self.records.append(record)


_collector: _Collect | None = None


def _start_worker(level: int) -> None:
    global _collector
    _collector = _Collect()
    root = logging.getLogger()
    root.handlers[:] = [_collector]
    root.setLevel(level)
    # A document's objects die by reference count as soon as its result is sent; what the cyclic collector
    # would walk, over and over, is the modules imported above. Frozen, and collected less often.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_OBJECTS, 20, 20)


def _read(body: bytes, url: str, content_type: str | None) -> tuple[PreparedFeed | None, list[logging.LogRecord]]:
    """In a worker: the prepared document, or None when it raised (read again by the caller, who gets the error)."""
    assert _collector is not None
    _collector.records = []
    try:
        prepared: PreparedFeed | None = read_document(body, url, content_type)
    except Exception:
        prepared, _collector.records = None, []  # the caller's own reading logs whatever this one did
    return prepared, _collector.records


class ReadPool:
    """read(body, url, content_type) -> PreparedFeed, on the pool once START_AFTER documents were read inline."""

    def __init__(self, workers: int | None = None, *, start_at_once: bool = False) -> None:
        """`start_at_once`: the caller knows many documents will need reading, so none is read inline first."""
        self.workers = worker_count() if workers is None else workers
        self.start_at_once = start_at_once
        self.read_inline = 0
        self._executor: ProcessPoolExecutor | None = None

    async def read(self, body: bytes, url: str, content_type: str | None) -> PreparedFeed:
        executor = self._ready()
        if executor is not None:
            try:
                prepared, records = await asyncio.get_running_loop().run_in_executor(
                    executor, _read, body, url, content_type)
            except BrokenProcessPool:  # a worker was killed (out of memory?): the rest of the poll reads here
                log.warning("a document-reading worker process died; reading the remaining documents in one process")
                self.workers = 0
                self._shutdown()
            else:
                for record in records:
                    logging.getLogger(record.name).handle(record)
                if prepared is not None:
                    return prepared
        self.read_inline += 1
        return read_document(body, url, content_type)

    def _ready(self) -> ProcessPoolExecutor | None:
        if self._executor is None and self.workers and (self.start_at_once or self.read_inline >= START_AFTER):
            # spawn, not fork: the poll's process has threads (the resolver, the state's writer) by now
            self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_start_worker,
                                                 initargs=(logging.getLogger().getEffectiveLevel(),))
        return self._executor

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def close(self) -> None:
        self._shutdown()
