"""Which refusal a Secret Server 4xx answer is: one place that reads `errorCode`, `message`
and `modelState`, so the code above the client catches error types instead of reading text.

SS answers a refused call with `BadRequestResponse`: `{"errorCode", "message",
"messageDetail", "modelState"}`; its token endpoint answers OAuth2's `{"error",
"error_description"}`. Only `API_AccessDenied` is documented by Delinea; the other codes
below are what the stand-in (and, as far as is known, SS) sends. Where SS is known to refuse
without a code, or a version may word it differently, the wording is the fallback, and it is
read here only:

- not pending: "no longer pending" / a code containing "NotPending";
- not a reviewer: "cannot review", "not allowed", "permission" (SS says "You cannot review
  this request." with no code when a requester reviews their own request);
- ticket / comment required: "ticket" anywhere (code, message, modelState keys such as
  `args.TicketNumber`), or "requestcomment" (`args.RequestComment`);
- OTP: "otp", "one-time", "one time", "two factor", "two-factor", "2fa" in the token
  endpoint's error.
"""

from __future__ import annotations

from typing import Any

from ..errors import (
    AccessDenied,
    ApprovalRequired,
    CommentRequired,
    NotAReviewer,
    RequestNotPending,
    RequestRejected,
    SecretServerError,
    TicketRequired,
)

ACCESS_DENIED = "API_AccessDenied"
REQUEST_NOT_PENDING = "API_RequestNotPending"
APPROVAL_REQUIRED = "API_ApprovalRequired"

_BY_CODE: dict[str, type[RequestRejected]] = {
    REQUEST_NOT_PENDING: RequestNotPending,
    APPROVAL_REQUIRED: ApprovalRequired,
}
_NOT_PENDING_WORDS = ("notpending", "no longer pending")
_REVIEWER_WORDS = ("cannot review", "not allowed", "permission")
_OTP_WORDS = ("otp", "one-time", "one time", "two factor", "2fa", "two-factor")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _by_wording(code: str, message: str, fields: list[str]) -> type[RequestRejected]:
    """The fallback for a refusal SS sent without a code we know."""
    said = f"{code} {message}".lower()
    if any(w in said for w in _NOT_PENDING_WORDS):
        return RequestNotPending
    with_fields = " ".join([said, *fields]).lower()
    if "ticket" in with_fields:
        return TicketRequired
    if "requestcomment" in with_fields:
        return CommentRequired
    if any(w in said for w in _REVIEWER_WORDS):
        return NotAReviewer
    return RequestRejected


def refusal(status: int, body: Any, path: str) -> SecretServerError:
    """The error for a 4xx answer (other than 401/403/429) with JSON body `body`."""
    d = body if isinstance(body, dict) else {}
    code = _text(d.get("errorCode"))
    message = next((d[k] for k in ("message", "error_description", "error") if _text(d.get(k))),
                   f"HTTP {status}")
    if code == ACCESS_DENIED:
        return AccessDenied(f"Secret Server: {message}", path=path, status=status)
    if not code:
        code = _text(d.get("error"))            # token endpoint: {"error": "invalid_grant", ...}
    state = d.get("modelState") if isinstance(d.get("modelState"), dict) else None
    kind = _BY_CODE.get(code) or _by_wording(code, message, [str(k) for k in state or {}])
    return kind(f"Secret Server: {message[:300]}", path=path, status=status, error_code=code,
                model_state=state)


def wants_otp(exc: RequestRejected) -> bool:
    """True when the token endpoint's refusal is about a one-time password."""
    said = f"{exc.error_code} {exc.args[0] if exc.args else ''}".lower()
    return any(w in said for w in _OTP_WORDS)
