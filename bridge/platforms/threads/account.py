"""A Threads account's [accounts.NAME] table: the Meta app, where the long-lived token lives, the API's address."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from bridge.config import AccountConfig, SecretRef, ServerUrl

GRAPH_URL = "https://graph.threads.net"


class ThreadsAccount(AccountConfig):
    type: Literal["threads"]
    # The Threads app id and secret (App Dashboard > App settings > Basic > Threads App ID / secret): needed by
    # `bridge login threads`; posting and refreshing need only the token.
    app_id: str | None = None
    app_secret: SecretRef | None = None
    access_token: SecretRef | None = None  # the long-lived token `bridge login threads` printed or wrote
    graph_url: ServerUrl = GRAPH_URL  # Meta's API; the tests point it at their fake

    @model_validator(mode="after")
    def _no_edits(self) -> "ThreadsAccount":
        if self.edit_on_update:
            raise ValueError("edit_on_update: Threads' API cannot edit a post; remove edit_on_update from this account")
        return self

    @property
    def server_url(self) -> str:
        return self.graph_url.rstrip("/")
