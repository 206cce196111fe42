"""Limits every platform's post obeys, named, each with where it comes from (see docs platform-rules.md).

Nothing else in bridge.render writes a limit inline. A platform's own limits live in its package
(bridge/platforms/<name>/limits.py).
"""

from __future__ import annotations

# --- Shared by every platform: the strictest platform's rule ------------------------------------------------
# A hashtag bridge writes must be one every platform takes; Bluesky's tag facet is the strictest
# (bluesky-social/atproto lexicons app/bsky/richtext/facet.json #tag: maxGraphemes 64, maxLength 640).
HASHTAG_MAX_GRAPHEMES = 64
HASHTAG_MAX_BYTES = 640
# A card image: Bluesky's blob limit is the tightest (app.bsky.embed.external#external thumb maxSize).
CARD_THUMB_MAX_BYTES = 1_000_000
VISIBILITIES = ("public", "unlisted", "private", "direct")  # Mastodon's, from most to least visible

# --- Our own choices (not platform rules) -----------------------------------------------------------------
# The card's description: the lexicon sets no limit, the app shows about three lines.
CARD_DESCRIPTION_MAX_GRAPHEMES = 300
CARD_TITLE_MAX_GRAPHEMES = 300
# Our choice: a card image smaller than this (a logo, an icon, a 1x1 spacer that slipped through) looks broken
# when stretched over a card; the card goes out without one. Also the least a photo must be to be attached.
MIN_IMAGE_WIDTH = 200
MIN_IMAGE_HEIGHT = 100
