"""The HTTP side: Web API calls on /api/<method>, response URLs on /hooks/<id>."""

from __future__ import annotations

import json
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ..loopback import LoopbackHandler
from .faults import DropConnection

if TYPE_CHECKING:
    from .standin import SlackStandIn


log = logging.getLogger(__name__)


class _Handler(LoopbackHandler):
    standin: SlackStandIn
    server_version = "SlackStandIn/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # request lines carry no token (tokens travel in headers/bodies), but stay quiet anyway
        log.debug("slack stand-in: %s", self.path.split("?", 1)[0])

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        parts = urlsplit(self.path)
        raw = self._read_body()
        ctype = (self.headers.get("Content-Type") or "").lower()
        try:
            if parts.path.startswith("/api/"):
                method = parts.path[len("/api/"):].strip("/")
                args = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                if raw:
                    if "json" in ctype:
                        body = json.loads(raw.decode("utf-8"))
                        if not isinstance(body, dict):
                            raise ValueError("JSON body must be an object")
                        args.update(body)
                    else:
                        form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
                        args.update({k: v[-1] for k, v in form.items()})
                token = None
                auth = self.headers.get("Authorization") or ""
                if auth.lower().startswith("bearer "):
                    token = auth[7:].strip()
                if not token and isinstance(args.get("token"), str):
                    token = args["token"]
                try:
                    status, body, headers = self.standin.handle_api(method, args, token)
                except DropConnection:
                    self._drop()
                    return
                self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8", headers)
            elif parts.path.startswith("/hooks/") and self.command == "POST":
                hook_id = parts.path[len("/hooks/"):].strip("/")
                if "json" in ctype:
                    body = json.loads(raw.decode("utf-8") or "{}")
                else:  # legacy form-encoded webhook: payload=<json>
                    form = parse_qs(raw.decode("utf-8"))
                    body = json.loads(form.get("payload", ["{}"])[-1])
                if not isinstance(body, dict):
                    raise ValueError("payload must be a JSON object")
                try:
                    status, text = self.standin.handle_hook(hook_id, body)
                except DropConnection:
                    self._drop()
                    return
                self._send(status, text.encode(), "text/html", {})
            else:
                self._send(404, b"Not Found", "text/plain", {})
        except (ValueError, UnicodeDecodeError):
            if parts.path.startswith("/hooks/"):
                self._send(400, b"invalid_payload", "text/html", {})
            else:
                self._send(200, b'{"ok": false, "error": "invalid_json"}', "application/json", {})

    def _drop(self) -> None:
        """Close the connection with a TCP reset and no answer (SO_LINGER 0)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _send(self, status: int, payload: bytes, ctype: str, headers: dict) -> None:
        # every Web API answer names the token's scopes, as Slack's do
        self._write_answer(status, payload, ctype, {"x-oauth-scopes": ",".join(self.standin.scopes), **headers})
