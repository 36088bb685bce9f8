"""The relay's HTTP surface as one small WSGI router: health, readiness, metrics, and the
Slack and sign-in routes mounted by the interactions layer. Plain functions, no framework."""

from __future__ import annotations

import json
from typing import Callable, Iterable

MAX_BODY_BYTES = 1 << 20   # Slack payloads are far smaller; anything larger is refused with 413

Handler = Callable[[dict], tuple[int, list[tuple[str, str]], bytes]]


def json_response(status: int, body: dict) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps(body).encode()


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            413: "Payload Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


class WebApp:
    """Routes (method, path) to handlers taking the WSGI environ (with the body read once)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        handler = self.routes.get((method, path))
        if handler is None:
            allowed = any(p == path for _, p in self.routes)
            status, headers, body = json_response(405 if allowed else 404,
                                                  {"error": "method not allowed" if allowed else "not found"})
        else:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY_BYTES:
                status, headers, body = json_response(413, {"error": "request body too large"})
            else:
                environ["ssrelay.body"] = environ["wsgi.input"].read(length) if length else b""
                status, headers, body = handler(environ)
        start_response(f"{status} {_REASONS.get(status, '')}".strip(),
                       headers + [("Content-Length", str(len(body)))])
        return [body]
