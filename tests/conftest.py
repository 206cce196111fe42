"""Shared fixtures: the real Bluesky PDS (tests/pds_fixture.py), a real Bluesky AppView with its own PDS
(tests/appview_fixture.py), the real Takahē (tests/takahe_fixture.py), real Nostr relays
(tests/nostr_relay_fixture.py), the local feed server (tests/feedserver.py), and a real PostgreSQL with the
`store` fixture that runs a state test on SQLite and on PostgreSQL (tests/postgres_fixture.py)."""

from tests.appview_fixture import appview  # noqa: F401
from tests.feedserver import feed_server  # noqa: F401
from tests.nostr_relay_fixture import nostr_relay, nostr_relay_factory, nostr_relay_restricted  # noqa: F401
from tests.pds_fixture import pds, pds_factory, pds_ratelimited  # noqa: F401
from tests.postgres_fixture import postgres, store  # noqa: F401
from tests.takahe_fixture import takahe  # noqa: F401
