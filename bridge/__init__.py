"""bridge: carry a blog's new entries, exactly once, to Mastodon and Bluesky."""

__version__ = "0.1.0"
