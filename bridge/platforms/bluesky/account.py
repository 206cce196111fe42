"""A Bluesky account's [accounts.NAME] table: the handle, the entryway and where its app password lives."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import model_validator

from bridge.config import AccountConfig, SecretRef, ServerUrl, Text

DEFAULT_SERVICE = "https://bsky.social"


class BlueskyAccount(AccountConfig):
    type: Literal["bluesky"]
    handle: Text | None = None
    service: ServerUrl | None = None
    app_password: SecretRef | None = None

    @model_validator(mode="after")
    def _fields_for_bluesky(self) -> "BlueskyAccount":
        if not self.handle:
            raise ValueError('a bluesky account needs handle = "you.bsky.social"')
        if self.edit_on_update:
            raise ValueError("edit_on_update cannot apply to Bluesky: its posts cannot be edited")
        return self

    @property
    def service_url(self) -> str:
        return (self.service or DEFAULT_SERVICE).rstrip("/")

    server_key: ClassVar[str] = "service"

    @property
    def server_url(self) -> str:
        return self.service_url
