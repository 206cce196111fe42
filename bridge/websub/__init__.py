"""WebSub (W3C Recommendation, 2018): a feed's hub tells bridge within seconds that the feed changed.

- discovery.py: the hub and topic a fetched feed names (Link header first, then the document).
- hub.py: bridge's requests to a hub (subscribe, unsubscribe), fenced and with deadlines like every fetch.
- callback.py: the public route hubs call: intent verification and signed content distribution.
- subscriber.py: the daemon's job that subscribes, renews, resubscribes and unsubscribes.

Polling stays the safety net: while a subscription is healthy the feed is polled every websub_poll_interval.
"""
