"""The contract table's servers, one per row for the whole session, each behind a FaultProxy (tests/faultproxy.py;
a relay: tests/relayproxy.py) so that the cases can make it fail; the rows are in targets.py."""

from __future__ import annotations

import pytest

from tests.contract.targets import (RESET_SECONDS, FakeServer, NostrContractAccount, PdsAccount, ProxiedServer,
                                    TakaheContractAccount, ThreadsContractServer)
from tests.faultproxy import FaultProxy
from tests.mastodon_fake import MastodonFake
from tests.relayproxy import RelayProxy
from tests.threads_fake import ThreadsFake


@pytest.fixture(scope="session")
def contract_pds(pds):
    with FaultProxy(pds.url) as proxy:
        yield ProxiedServer(proxy, lambda: PdsAccount(pds, proxy))


@pytest.fixture(scope="session")
def contract_takahe(takahe):
    with FaultProxy(takahe.url) as proxy:
        yield ProxiedServer(proxy, lambda: TakaheContractAccount(takahe, proxy))


def _fake(profile: str):
    """A session's Mastodon fake answering like `profile` (tests/mastodon_fake/profiles.py)."""

    @pytest.fixture(scope="session")
    def fixture():
        with MastodonFake(profile=profile) as fake, FaultProxy(fake.url) as proxy:
            # its 429 fault reports the per-token window's reset: a second or two ahead, not Mastodon's 5 minutes
            fake.set_limits(per_token=(300, RESET_SECONDS))
            yield FakeServer(fake, proxy)

    return fixture


contract_fake_mastodon = _fake("mastodon")
contract_fake_takahe = _fake("takahe")
contract_fake_gotosocial = _fake("gotosocial")
contract_fake_akkoma = _fake("akkoma")


@pytest.fixture(scope="session")
def contract_nostr(nostr_relay_factory):
    relay = nostr_relay_factory()  # a relay of its own: the cases count the events on it
    with RelayProxy(relay.url) as proxy:
        yield ProxiedServer(proxy, lambda: NostrContractAccount(relay, proxy))


@pytest.fixture(scope="session")
def contract_threads():
    with ThreadsFake() as fake:  # its own fault hooks; Meta's Retry-After-less answers: docs/threads.md
        yield ThreadsContractServer(fake)
