"""The floor: a trivial endpoint on the same stack as ``taskstore serve`` (Flask app under
gunicorn gthread workers with the same settings), returning a constant JSON body.

    python bench/floor_app.py --port 18090 --workers 2 --threads 4
"""

from __future__ import annotations

import argparse

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/floor")
def floor():
    return jsonify(status="ok")


def main() -> None:
    from gunicorn.app.base import BaseApplication

    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18090)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()

    class Server(BaseApplication):
        # The same settings as webapp/cli.py's serve command.
        def load_config(self):
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", args.workers)
            self.cfg.set("threads", args.threads)
            self.cfg.set("worker_class", "webapp.serving.BalancedThreadWorker")  # as taskstore serve
            self.cfg.set("accesslog", None)
            self.cfg.set("timeout", 60)
            self.cfg.set("keepalive", 5)
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self):
            return app

    Server().run()


if __name__ == "__main__":
    main()
