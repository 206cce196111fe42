"""bridge: carry a blog's new entries, exactly once, to Mastodon, Bluesky and Nostr."""

__version__ = "0.1.0"
