"""CPU time and peak RSS of running processes, read from /proc (Linux), for processes the benchmark did not fork
itself or that keep running between measurements: `bridge run` workers, a PostgreSQL cluster.

A process's CPU is its user + system time (all its threads) plus that of its children it has waited for. For a
PostgreSQL cluster that is the postmaster and every live child (backends, checkpointer, WAL writer, ...) plus the
postmaster's waited-for children: a backend that has exited still counts, in the postmaster's cutime/cstime.
"""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its closing parenthesis.
    return text[text.rindex(")") + 2:].split()  # fields from 3 (state) on: index = field number - 3


def _cpu(fields: list[str], *, children: bool) -> float:
    utime, stime, cutime, cstime = (int(fields[index]) for index in (11, 12, 13, 14))
    return (utime + stime + (cutime + cstime if children else 0)) / TICKS


def process_cpu(pid: int) -> float:
    """CPU seconds spent so far by `pid` and its waited-for children; 0 when it is gone."""
    fields = _stat_fields(pid)
    return _cpu(fields, children=True) if fields else 0.0


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident set so far (VmHWM), in MB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def children_of(parent: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def cluster_cpu(postmaster: int, *, excluding: tuple[int, ...] = ()) -> float:
    """CPU seconds spent so far by a PostgreSQL cluster: the postmaster, its live children (but `excluding`: the
    benchmark's own connection, whose queries are not the workload's) and its exited ones."""
    total = process_cpu(postmaster)
    for pid in children_of(postmaster):
        if pid not in excluding:
            fields = _stat_fields(pid)
            total += _cpu(fields, children=False) if fields else 0.0
    return total


def postmaster_pid(data_dir: Path) -> int:
    """The postmaster's process id, from the first line of the data directory's postmaster.pid."""
    return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
