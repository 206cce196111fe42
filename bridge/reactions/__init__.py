"""The way back: the replies, likes and reposts each posted entry gets, gathered from every network.

A second, read-only flow beside publishing (design.md, "The way back"):

    posted deliveries -> a platform's gatherer (bridge/platforms/<name>/reactions.py) -> state
                      -> comments documents, fragments and widget files (bridge.reactions.publish)

It shares only the state and the platform packages with publishing, runs as its own job, and a failure here
never holds a post back. The platform-neutral data lives in bridge.reactions.model; the contract a platform's
gatherer fulfils in bridge.reactions.gatherer.
"""
