"""The state database (bridge/state/store.py): the outbox, feeds, accounts and the rest of bridge's memory, in
SQLite (the default) or PostgreSQL (bridge/state/postgres.py). Open it with open_state (bridge/state/opening.py)."""

from bridge.state.store import (  # noqa: F401
    AlertRow,
    DeliveryRow,
    FeedRow,
    PostedEntry,
    State,
    WebSubRow,
    broken_state_fix,
    migrations,
)
from bridge.state.opening import describe_store, open_state  # noqa: F401,E402
