"""The state database (bridge/state/store.py): the outbox, feeds, accounts and the rest of bridge's memory."""

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
