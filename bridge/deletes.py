"""Deletes that follow the blog (opt-in per account: `follow_deletes`; docs/deletes.md).

The poll watches a posted entry that left its feed (pipeline.Poller._note_vanished). Here, each watched entry's
permalink is asked, redirects not followed:
- 404 or 410 twice, at least [bridge] delete_recheck apart: the entry is deleted; its posts on the accounts that
  follow deletes are deleted (Target.delete), each logged, the delivery row kept in state `deleted`;
- a redirect: the entry moved; kept (never deleted);
- 2xx: the page is still there (the feed only dropped it); kept;
- anything else (5xx, no answer): asked again later; nothing is decided on it.

A long note posted as a thread (bridge/notethreads.py) loses its replies, last first, then its first post; so
does a thread whose delivery failed after some of its parts were posted (those parts are deleted).

A crash during deletion resumes: the entry stays `deleting` until every post is gone, and deleting a post that is
already gone counts as done (each target treats "not found" as deleted).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable

from bridge import __version__
from bridge.config import Config
from bridge.errors import PublishError
from bridge.faults import crash_point
from bridge.linkpreview.model import LinkPreviewError
from bridge.logs import log_event
from bridge.state import State
from bridge.unexpected import NOT_ISOLATED, unexpected

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("bridge.deletes")

GONE = (404, 410)
RETRY_SECONDS = 3600.0  # a failed check or delete is tried again this much later


@dataclass
class DeleteReport:
    deleted: list[str] = field(default_factory=list)  # "account: remote URL"
    would_delete: list[str] = field(default_factory=list)  # dry run: "account: remote URL (entry link)"
    kept: list[str] = field(default_factory=list)  # "link: why"
    errors: list[str] = field(default_factory=list)


class DeleteFollower:
    def __init__(self, config: Config, state: State, *, target_factory: Callable[[str], object] | None,
                 clock: Callable[[], float] = time.time, client: httpx.Client | None = None) -> None:
        self.config = config
        self.state = state
        self.target_factory = target_factory  # None: a dry run, nothing is deleted
        self.clock = clock
        self._client = client

    @property
    def client(self) -> httpx.Client:
        if self._client is None:  # made at the first permalink checked: most passes have none to check
            import httpx

            self._client = httpx.Client(
                headers={"User-Agent": self.config.bridge.user_agent.replace("{version}", __version__)})
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def run(self) -> DeleteReport:
        report = DeleteReport()
        if not any(account.follow_deletes for account in self.config.accounts.values()):
            return report
        for watched in self.state.vanished(states=("checking",), due_by=self.clock()):
            self._check(watched, report)
        for watched in self.state.vanished(states=("deleting",)):
            self._delete(watched, report)
        return report

    # --- is the entry really gone? -------------------------------------------------------------------------

    def _check(self, watched: dict, report: DeleteReport) -> None:
        from bridge.linkpreview.fetch import permalink_answer

        now = self.clock()
        link, entry_id = watched["link"], watched["entry_id"]
        if not link:
            self.state.update_vanished(entry_id, now, state="kept", note="the entry has no permalink to check")
            return
        try:
            status, location = permalink_answer(link, client=self.client,
                                                allow_private=self.config.bridge.allow_private_addresses)
        except LinkPreviewError as exc:
            self.state.update_vanished(entry_id, now, next_check_at=now + RETRY_SECONDS, note=str(exc))
            return
        if status in GONE:
            checks = watched["gone_checks"] + 1
            first = watched["first_gone_at"] or now
            if checks >= 2 and now - first >= self.config.bridge.delete_recheck:
                self.state.update_vanished(entry_id, now, state="deleting", gone_checks=checks, last_status=status,
                                           note=f"the permalink answered HTTP {status} twice")
                log_event(log, logging.WARNING, f"entry {link} was deleted from the blog (HTTP {status}); deleting "
                          "its posts", feed=watched["feed"], entry=watched["key"])
                watched["state"] = "deleting"
            else:
                self.state.update_vanished(entry_id, now, gone_checks=checks, first_gone_at=first, last_status=status,
                                           next_check_at=first + self.config.bridge.delete_recheck)
            return
        if 300 <= status < 400:
            why = f"its permalink redirects (HTTP {status}) to {location or 'an unnamed place'}: moved, not deleted"
        elif 200 <= status < 300:
            why = f"its permalink still answers HTTP {status}: only the feed dropped it"
        else:
            self.state.update_vanished(entry_id, now, next_check_at=now + RETRY_SECONDS, last_status=status,
                                       note=f"the permalink answered HTTP {status}; asked again later")
            return
        self.state.update_vanished(entry_id, now, state="kept", last_status=status, note=why)
        report.kept.append(f"{link}: {why}")
        log.info("entry %s left its feed; its posts are kept: %s", link, why)

    # --- deleting its posts --------------------------------------------------------------------------------

    def _delete(self, watched: dict, report: DeleteReport) -> None:
        now = self.clock()
        rows = [row for row in self.state.with_posts(watched["entry_id"])
                if row.account in self.config.accounts and self.config.accounts[row.account].follow_deletes]
        failed = False
        for row in rows:
            parts = self.state.thread_parts(row.id)
            if row.state != "posted":  # a thread that failed part way: its first post stands for it, as once posted
                row = replace(row, remote_id=parts[0]["remote_id"], remote_url=parts[0]["url"])
            where = f"{row.account}: {row.remote_url or row.remote_id}"
            if self.target_factory is None:
                report.would_delete.append(f"{where} ({watched['link']})")
                continue
            try:
                target = self.target_factory(row.account)
                delete = getattr(target, "delete", None)
                if delete is None:
                    raise PublishError(f"bridge cannot delete posts on {target.platform} yet")
                for part in reversed(parts[1:]):  # a long note's thread: replies first
                    target.delete_reply(row, part)
                delete(row)
                crash_point("after-remote-delete")
            except NOT_ISOLATED:
                raise
            except Exception as exc:  # one post's trouble: said, tried again next time; the others go on
                reason = str(exc) if isinstance(exc, PublishError) else unexpected(log, exc, f"deleting {where}")
                failed = True
                report.errors.append(f"{where}: {reason}")
                log_event(log, logging.WARNING, f"cannot delete {where} yet: {reason}", account=row.account)
                continue
            self.state.mark_deleted(row.id, self.clock())
            report.deleted.append(where)
            log_event(log, logging.WARNING, f"deleted {where}: its entry {watched['link']} was deleted from the blog",
                      account=row.account, entry=watched["key"])
        if self.target_factory is not None:
            if failed:
                self.state.update_vanished(watched["entry_id"], now, note="some posts could not be deleted yet")
            else:
                self.state.update_vanished(watched["entry_id"], now, state="deleted")
