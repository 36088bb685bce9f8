"""What the loopback stand-ins' HTTP request handlers have in common.

The Slack Web API stand-in (``relay.sandbox.slack``) and the Secret Server stand-in
(``relay.sandbox.secret_server``) both serve keep-alive HTTP/1.1 on
``http.server``: they read a request body by its ``Content-Length`` and write an
answer with a content type, a length and extra headers, treating a client that
hung up (a timeout test) as a closed connection rather than an error. The Socket
Mode stand-in speaks WebSocket on a raw socket and has no request handler.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Mapping


class LoopbackHandler(BaseHTTPRequestHandler):
    """Base request handler of the loopback stand-ins: body in, answer out."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the real services and their clients use

    def _read_body(self) -> bytes:
        """The request body (empty without a positive ``Content-Length``)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write_answer(self, status: int, payload: bytes, ctype: str, headers: Mapping[str, str] | None = None) -> None:
        """Write status, ``Content-Type``, ``Content-Length``, ``headers`` in order, then the payload."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            self.close_connection = True
