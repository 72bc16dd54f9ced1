"""The floor: a trivial endpoint on the same stack as ``taskstore serve`` (a Flask app under the
HTTP server named, with the same workers, threads and settings), returning a constant JSON body.

    python bench/floor_app.py --server granian --port 18090 --workers 2 --threads 4
"""

from __future__ import annotations

import argparse

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/floor")
def floor():
    return jsonify(status="ok")


def main() -> None:
    from webapp.serving import SERVERS, run  # the settings of taskstore serve

    ap = argparse.ArgumentParser()
    ap.add_argument("--server", choices=list(SERVERS), default=next(iter(SERVERS)))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18090)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()

    run(args.server, lambda: app, host=args.host, port=args.port, workers=args.workers, threads=args.threads)


if __name__ == "__main__":
    main()
