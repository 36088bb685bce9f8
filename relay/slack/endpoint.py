"""The Slack HTTP endpoint: Slack's request signature checked here before Bolt sees the
request (401 for a bad or missing signature, a timestamp more than 5 minutes off, or a
non-numeric one), then its shape checked by `guard` (400 for a malformed payload, so neither
Bolt's extractors nor a listener ever read one); Bolt checks the signature again (defence in
depth). A signed request no listener handles gets a 200 ack, as Slack expects.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Sequence

from slack_bolt import App, BoltRequest

from ..web.app import json_response
from . import guard

log = logging.getLogger(__name__)

SLACK_PATHS = ("/slack/events", "/api/v1/slack/event", "/api/v1/slack/interaction")
MAX_CLOCK_SKEW = 300                     # seconds, Slack's replay window

Response = tuple[int, list[tuple[str, str]], bytes]


def signed(signing_secret: str, environ: dict, body: bytes) -> bool:
    """Whether the request carries Slack's v0 signature of `body`, made within MAX_CLOCK_SKEW."""
    ts = (environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or "").strip()
    sig = (environ.get("HTTP_X_SLACK_SIGNATURE") or "").strip()
    if not ts or not sig or not ts.isascii() or not ts.isdigit() or len(ts) > 12:
        return False
    if abs(time.time() - int(ts)) > MAX_CLOCK_SKEW:
        return False
    # Slack's v0 signature over the raw bytes, so a signed body that is not UTF-8 is still
    # recognised as signed (and then refused as malformed, 400)
    expected = "v0=" + hmac.new(signing_secret.encode(), b"v0:" + ts.encode() + b":" + body,
                                hashlib.sha256).hexdigest()
    return sig.isascii() and hmac.compare_digest(expected, sig)


class SlackEndpoint:
    """POST handler for the SLACK_PATHS (a WebApp route): verify, check, hand to Bolt."""

    def __init__(self, app: App, signing_secret: str):
        self.app = app
        self.signing_secret = signing_secret

    def verify(self, environ: dict, body: bytes) -> bool:
        return signed(self.signing_secret, environ, body)

    def handle_http(self, environ: dict) -> Response:
        body: bytes = environ.get("ssrelay.body", b"")
        if not self.verify(environ, body):
            return json_response(401, {"error": "invalid request"})
        ctype = environ.get("CONTENT_TYPE")
        try:
            payload = guard.parse_body(body, ctype)
            if payload is None:   # Slack's ssl_check probe
                return 200, [("Content-Type", "text/plain")], b""
            guard.check_envelope(payload)
        except guard.Malformed as exc:
            log.warning("malformed slack request", extra={"error": str(exc)[:200]})
            return json_response(400, {"error": "malformed request"})
        resp = self.app.dispatch(self._bolt_request(environ, body, ctype))
        if resp.status == 404:   # signed, well-formed, but nothing of ours: ack it, as Slack expects
            log.info("slack request without a listener: acknowledged",
                     extra={"type": payload.get("type")})
            return 200, [("Content-Type", "text/plain")], b""
        out_headers = [(k, v) for k, v in resp.first_headers().items() if k.lower() != "content-length"]
        data = resp.body.encode("utf-8") if isinstance(resp.body, str) else (resp.body or b"")
        return resp.status, out_headers, data

    @staticmethod
    def _bolt_request(environ: dict, body: bytes, ctype: str | None) -> BoltRequest:
        headers: dict[str, str | Sequence[str]] = {}
        for k, v in environ.items():
            if k.startswith("HTTP_") and isinstance(v, str):
                headers[k[5:].replace("_", "-").lower()] = [v]
        # Bolt reads the body as the guard did: JSON for application/json, else the form
        headers["content-type"] = ["application/json" if guard.media_type(ctype) == "application/json"
                                   else "application/x-www-form-urlencoded"]
        return BoltRequest(body=body.decode("utf-8"), query=environ.get("QUERY_STRING", ""), headers=headers)
