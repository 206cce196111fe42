"""Named crash points for the crash-matrix tests.

`BRIDGE_TEST_CRASH_AT=<point>` makes the process kill itself with SIGKILL when it reaches that point, the way
a power cut or the OOM killer would. Unset (always, outside tests) it costs one dictionary lookup.

    mid-fetch           a feed fetched, nothing about it recorded yet
    mid-commit          a feed's new entries and their deliveries written, the transaction not yet committed
    mid-render          a post composed (page and thumbnail fetched), its payload not yet stored
    after-delivery-row  the delivery committed as `sending`, nothing sent yet
    mid-media-upload    an image uploaded to the server, the post not yet made
    after-remote-post   the post made on the server, `posted` not yet committed
    after-remote-delete a post deleted on the server, `deleted` not yet committed (deletes that follow the blog;
                        tests/test_deletes.py, not the posting matrix: POINTS)
    thread-part-N-sent  part N (1, 2...) of a long note's thread made on the server, not yet saved
    thread-part-N-saved part N saved, part N+1 not yet sent (bridge/notethreads.py; tests/test_longnotes_e2e.py)
"""

from __future__ import annotations

import os
import signal

POINTS = ("mid-fetch", "mid-commit", "mid-render", "after-delivery-row", "after-remote-post", "mid-media-upload")


def crash_point(name: str) -> None:
    if os.environ.get("BRIDGE_TEST_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
