"""A Bluesky account's [accounts.NAME] table: the handle, the entryway and where its app password lives."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import model_validator

from bridge.config import AccountConfig, SecretRef, ServerUrl, Text

DEFAULT_SERVICE = "https://bsky.social"
# Where reactions (threads, counts) are read: Bluesky's public, unauthenticated AppView endpoint.
DEFAULT_APPVIEW = "https://public.api.bsky.app"


class BlueskyAccount(AccountConfig):
    type: Literal["bluesky"]
    handle: Text | None = None
    service: ServerUrl | None = None
    app_password: SecretRef | None = None
    appview: ServerUrl | None = None  # where replies and counts are read (bridge reactions)

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

    @property
    def appview_url(self) -> str:
        return (self.appview or DEFAULT_APPVIEW).rstrip("/")

    server_key: ClassVar[str] = "service"

    @property
    def server_url(self) -> str:
        return self.service_url
