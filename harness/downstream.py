"""The downstream service: a small "email provider" jobs call; it records every call it receives.

Its call log is the side effect as the outside world sees it; the checker reconciles it with the
jobs' own effect records. Run as ``python -m harness.downstream --port N`` with the ledger
environment set; it binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.ledger import Recorder


def serve(host: str, port: int, recorder: Recorder) -> None:
    """Answer ``POST /send`` (records a call) and ``GET /healthz`` until killed."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply(200 if self.path == "/healthz" else 404, {"status": "ok"})

        def do_POST(self) -> None:
            if self.path != "/send":
                self._reply(404, {"error": "not found"})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                task_id, attempt = str(body["task_id"]), int(body.get("attempt", 0))
            except (ValueError, KeyError, TypeError):
                self._reply(422, {"error": "expected {task_id, attempt}"})
                return
            recorder.call(task_id, attempt)
            self._reply(200, {"task_id": task_id, "status": "sent"})

        def log_message(self, format: str, *args: object) -> None:  # quiet: the ledger is the log
            pass

    ThreadingHTTPServer.daemon_threads = True
    with ThreadingHTTPServer((host, port), Handler) as httpd:
        print(f"downstream listening on {host}:{port}", flush=True)
        httpd.serve_forever()


def main() -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True, help="port to listen on")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (its host's, when the run has several)")
    args = ap.parse_args()
    serve(args.host, args.port, Recorder.from_env())


if __name__ == "__main__":
    main()
