"""Which replies are shown, as a tree: the writer's and the repliers' wishes applied to what was gathered.

A reply is left out -- and everything below it, which answers something the reader cannot see -- when it is
not public or unlisted, its author asked not to be indexed, the writer hid it on the platform (Bluesky hidden
replies, threadgates) or in bridge (`bridge reactions hide URL`), or the writer blocked its author in bridge
(`bridge reactions block HANDLE`). A reply whose parent is not among the shown ones (a followers-only reply
the gatherer never kept, a deleted one) is left out the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.reactions.model import SHOWN_VISIBILITIES, Reply

# Levels of nesting shown; deeper replies join the deepest level, in order (a long back-and-forth would
# otherwise indent off the page, and nest deeper than JSON parsers and renderers like).
MAX_DEPTH = 6


@dataclass
class Node:
    reply: Reply
    children: list["Node"] = field(default_factory=list)


def normalize_handle(handle: str) -> str:
    """'@Alice@Example.Social' -> 'alice@example.social'; 'Alice.bsky.social' -> 'alice.bsky.social'."""
    return handle.strip().lstrip("@").lower()


def _withheld(reply: Reply, platform_hidden: frozenset[str], hidden_urls: set[str], blocked: set[str]) -> bool:
    return (
        reply.visibility not in SHOWN_VISIBILITIES
        or reply.author.noindex
        or reply.remote_id in platform_hidden
        or (reply.url is not None and reply.url in hidden_urls)
        or normalize_handle(reply.author.handle) in blocked
        or (reply.author.profile_url is not None and reply.author.profile_url in blocked)
    )


def shown_tree(root_id: str, replies: list[Reply], *, platform_hidden: frozenset[str] = frozenset(),
               hidden_urls: set[str] = frozenset(), blocked: set[str] = frozenset()) -> list[Node]:
    """The replies reachable from the post through shown replies, each level oldest first."""
    blocked = {normalize_handle(handle) for handle in blocked}
    children: dict[str, list[Reply]] = {}
    for reply in replies:
        if reply.parent_id is not None and not _withheld(reply, platform_hidden, hidden_urls, blocked):
            children.setdefault(reply.parent_id, []).append(reply)
    seen: set[str] = set()

    def ordered(parent_id: str) -> list[Reply]:
        fresh = [reply for reply in children.get(parent_id, []) if reply.remote_id not in seen]  # no cycles
        seen.update(reply.remote_id for reply in fresh)
        return sorted(fresh, key=lambda r: (r.created_at, r.remote_id))

    def flattened(parent_id: str) -> list[Node]:
        """Everything below `parent_id`, depth first, as one level (no recursion: chains can be long)."""
        out, stack = [], list(reversed(ordered(parent_id)))
        while stack:
            reply = stack.pop()
            out.append(Node(reply))
            stack.extend(reversed(ordered(reply.remote_id)))
        return out

    def grow(parent_id: str, depth: int) -> list[Node]:
        if depth >= MAX_DEPTH:
            return flattened(parent_id)
        return [Node(reply, grow(reply.remote_id, depth + 1)) for reply in ordered(parent_id)]

    return grow(root_id, 1)

def count_nodes(nodes: list[Node]) -> int:
    return sum(1 + count_nodes(node.children) for node in nodes)
