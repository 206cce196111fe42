"""The daemon's HTTP side: a read-only status page, `/metrics` and `/healthz` (and, later, WebSub callbacks),
served by `bridge run` when `[bridge] http_listen` is set. See docs/status-page.md.

access.py: who may read it; server.py: the router and the server; pages.py: the daemon's routes;
metrics.py: the Prometheus metrics. Nothing is imported here, so reading the config stays light.
"""
