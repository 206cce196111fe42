"""Run a command and report its peak RSS and CPU: `python -S bench/rss.py OUT_FILE COMMAND...`.

Why a middle process: a child's ru_maxrss counts the memory of the process it was forked from (Linux keeps the
old address space's high-water mark across exec), so measuring bridge straight from the benchmark would report
the benchmark's own size whenever that is larger. This small process forks bridge instead, writes the peak
RSS in KB and the CPU seconds (user + system, with the worker processes bridge waited for) to OUT_FILE,
forwards SIGTERM/SIGINT, and exits with bridge's exit code. The peak RSS is the largest single process's.
"""

import os
import signal
import sys

out, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.execvp(argv[0], argv)
for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(signum, lambda number, frame: os.kill(pid, number))
while True:
    try:
        _, status, usage = os.wait4(pid, 0)
        break
    except InterruptedError:
        continue
with open(out, "w") as handle:
    handle.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime:.3f}")
sys.exit(os.waitstatus_to_exitcode(status))
