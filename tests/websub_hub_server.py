"""A real WebSub hub (flask-websub's) on 127.0.0.1, in its own process: `python websub_hub_server.py PORT DB`.

flask-websub runs the hub's work (verifying intent, distributing content) as Celery tasks; here Celery runs them
eagerly, in the request that caused them, so no broker is needed. That is how flask-websub's own tests run it.
PUBLISH_SUPPORTED lets a test ping the hub (hub.mode=publish), as a blog engine does.
"""

from __future__ import annotations

import sys

from celery import Celery
from flask import Flask
from flask_websub.hub import Hub, SQLite3HubStorage
from werkzeug.serving import make_server


def main() -> None:
    port, database = int(sys.argv[1]), sys.argv[2]
    app = Flask("websub_hub")
    app.config.update(PUBLISH_SUPPORTED=True, HUB_MIN_LEASE_SECONDS=2, HUB_DEFAULT_LEASE_SECONDS=3600)
    celery = Celery("websub_hub", broker="memory://")
    celery.conf.update(task_always_eager=True, task_eager_propagates=False)
    hub = Hub(SQLite3HubStorage(database), celery, PUBLISH_SUPPORTED=True, SIGNATURE_ALGORITHM="sha256",
              REQUEST_TIMEOUT=5, MAX_ATTEMPTS=1, BACKOFF_BASE=0.1)
    app.register_blueprint(hub.build_blueprint(url_prefix="/hub"))
    server = make_server("127.0.0.1", port, app, threaded=True)
    print(f"READY {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
