"""A small web service: answers / with its release and /healthz with ok.

It uses only the standard library, so it builds without network access."""

import json
import logging
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RELEASE = os.environ.get("ENCLII_RELEASE_ID", "dev")
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            body = b"ok\n"
        else:
            body = json.dumps({"release": RELEASE, "path": self.path}).encode() + b"\n"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        logging.info(json.dumps({"level": "info", "message": format % args}))


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    logging.info(json.dumps({"level": "info", "message": f"listening on {port}"}))
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
