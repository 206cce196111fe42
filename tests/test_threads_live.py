"""Opt-in: the Threads target against Meta's real API, run only with BRIDGE_THREADS_LIVE_TOKEN (a long-lived token
of a test profile, from `bridge login threads`). It publishes one real post and reads it back -- what the fake's
conformance test cannot prove: that Meta answers as its reference says. Never run in CI (README: Threads accounts).
"""

from __future__ import annotations

import os
import time

import pytest

from bridge.platforms.threads.account import ThreadsAccount
from bridge.platforms.threads.target import ThreadsTarget
from bridge.state import State
from tests.test_threads import entry, payload_for, queued

TOKEN = os.environ.get("BRIDGE_THREADS_LIVE_TOKEN")

pytestmark = pytest.mark.skipif(
    not TOKEN, reason="live Threads test: set BRIDGE_THREADS_LIVE_TOKEN to a test profile's long-lived token to run it "
                      "(it publishes one real post); CI never sets it")


def test_one_real_post_is_published_once_and_found_by_its_container():
    state = State.open_memory()
    settings = ThreadsAccount.model_validate({"type": "threads", "access_token": {"env": "BRIDGE_THREADS_LIVE_TOKEN"}})
    target = ThreadsTarget("live", settings, TOKEN, state)
    try:
        diagnosis = target.diagnose()
        assert diagnosis["quota"]["quota_total"] > 0
        item = entry(int(time.time()), title=f"bridge live test {int(time.time())}")
        delivery = queued(state, item, time.time)
        payload = payload_for(item)
        state.set_payload(delivery.id, payload)
        published = target.publish(state.get_delivery(delivery.id), payload)
        assert published.url and published.url.startswith("https://www.threads")
        found = target.find_existing(state.get_delivery(delivery.id))  # the container is PUBLISHED: found, not re-posted
        assert found is not None and found.remote_id == published.remote_id
    finally:
        target.close()
