"""The contract suite's fault-injecting proxy (tests/faultproxy.py), on its own in front of the local feed server:
each rule does what it says to the next matching request only, and everything else passes through untouched."""

from __future__ import annotations

import httpx
import pytest

from tests.faultproxy import FaultProxy


@pytest.fixture
def proxied(feed_server):
    feed_server.route("/thing", "the server's answer", content_type="text/plain")
    with FaultProxy(feed_server.base_url) as proxy, httpx.Client(base_url=proxy.url, timeout=10) as http:
        yield feed_server, proxy, http


def test_requests_pass_through_and_are_seen(proxied):
    server, proxy, http = proxied
    answers = [http.get("/thing") for _ in range(2)]  # one kept-alive connection, two requests
    assert [(a.status_code, a.text) for a in answers] == [(200, "the server's answer")] * 2
    assert len(server.requests_for("/thing")) == 2
    assert [seen.outcome for seen in proxy.seen("GET /thing")] == ["forwarded", "forwarded"]


def test_an_answer_rule_stands_in_for_the_server_once(proxied):
    server, proxy, http = proxied
    proxy.answer_next("GET /thing", 429, headers={"Retry-After": "2"}, json={"error": "slow down"})
    refused = http.get("/thing")
    assert (refused.status_code, refused.headers["retry-after"], refused.json()) == (429, "2", {"error": "slow down"})
    assert server.requests_for("/thing") == []  # not forwarded
    assert http.get("/thing").status_code == 200
    assert proxy.rules == []


def test_a_lost_answer_reaches_the_server_and_never_the_client(proxied):
    server, proxy, http = proxied
    proxy.lose_next("GET /thing")
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/thing")
    assert len(server.requests_for("/thing")) == 1
    assert [seen.outcome for seen in proxy.seen("GET /thing")] == ["lost"]


def test_a_reset_reaches_neither(proxied):
    server, proxy, http = proxied
    proxy.reset_next("GET /other")  # rules match by method and path: this one waits for its request
    assert http.get("/thing").status_code == 200
    proxy.reset_next("GET /thing")
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/thing")
    assert len(server.requests_for("/thing")) == 1
    assert len(proxy.rules) == 1
