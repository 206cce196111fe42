"""Named crash points for the crash-matrix tests.

`BRIDGE_TEST_CRASH_AT=<point>` makes the process kill itself with SIGKILL when it reaches that point, the way
a power cut or the OOM killer would. Unset (always, outside tests) it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = ("mid-fetch", "after-delivery-row", "after-remote-post", "mid-media-upload")


def crash_point(name: str) -> None:
    if os.environ.get("BRIDGE_TEST_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
