"""A Mastodon account's [accounts.NAME] table: the server and where its access token lives."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import model_validator

from bridge.config import AccountConfig, SecretRef, ServerUrl


class MastodonAccount(AccountConfig):
    type: Literal["mastodon"]
    instance: ServerUrl | None = None
    access_token: SecretRef | None = None

    @model_validator(mode="after")
    def _has_instance(self) -> "MastodonAccount":
        if not self.instance:
            raise ValueError('a mastodon account needs instance = "https://your.instance"')
        return self

    @property
    def instance_url(self) -> str:
        return (self.instance or "").rstrip("/")

    server_key: ClassVar[str] = "instance"

    @property
    def server_url(self) -> str:
        return self.instance_url
