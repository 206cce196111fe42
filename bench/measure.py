"""Running a bridge command as its own process and reading its wall time and peak RSS (see bench/rss.py)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass
import sys
import tempfile
from pathlib import Path
from typing import Callable

RSS_WRAPPER = Path(__file__).with_name("rss.py")


def wrapped(argv: list[str]) -> tuple[list[str], Path]:
    """`argv` run under bench/rss.py, and the file where its peak RSS (KB) will be."""
    handle, path = tempfile.mkstemp(prefix="bridge-bench-rss-")
    os.close(handle)
    return [sys.executable, "-S", str(RSS_WRAPPER), path, *argv], Path(path)


def peak_rss_mb(path: Path) -> float:
    return usage(path)[0]


def usage(path: Path) -> tuple[float, float]:
    """(peak RSS in MB, CPU seconds) as bench/rss.py wrote them."""
    try:
        rss, cpu = path.read_text().split()
        return int(rss) / 1024, float(cpu)
    finally:
        path.unlink(missing_ok=True)


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    cpu_seconds: float = 0.0


def run_bridge(argv: list[str], *, env: dict | None = None, log_path: Path | None = None, check: bool = True) -> Run:
    """Run `argv` (a bridge command line); stderr (the log) goes to `log_path`, as journald would take it."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        command, rss_file = wrapped(argv)
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, env=env)
        stdout = proc.stdout.read()
        proc.wait()
        seconds = time.perf_counter() - started
    finally:
        if log_path:
            log.close()
    rss, cpu = usage(rss_file)
    run = Run(seconds, rss, proc.returncode, stdout.decode(errors="replace"), cpu)
    if check and run.returncode not in (0,):
        tail = log_path.read_text(errors="replace")[-2000:] if log_path else ""
        raise RuntimeError(f"{' '.join(argv)} exited {run.returncode}: {run.stdout}\n{tail}")
    return run


def cpu_seconds(argv: list[str], *, env: dict | None = None) -> tuple[float, int]:
    """(CPU time, user + system, exit code) of one run of `argv`, read from the kernel's account of that process."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, proc.returncode


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def write_results(results: dict, args, started: float, table: Callable[[dict], str]) -> None:
    """The run's record: its numbers with the machine, the arguments and the whole run's time, written as JSON to
    args.json; then its table printed."""
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    results["arguments"] = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    results["wall_seconds"] = time.perf_counter() - started
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print()
    print(table(results))
    print(f"\nnumbers written to {args.json}; whole run {results['wall_seconds']:.0f} s")
