"""The relay's error tree. Only the clients read HTTP statuses, SS error codes and
Slack `error` strings; everything above them catches these types.

    RelayError
    ├── ConfigError                    a config key is missing or malformed (names the key)
    │   └── ConfigProblems             several keys at once (`.problems`, one ConfigError each)
    ├── SecretServerError              anything that went wrong talking to Secret Server
    │   ├── SecretServerUnavailable    connection error, timeout, 5xx, 429 after retries
    │   ├── SecretServerBadResponse    HTML on a 200, malformed JSON, a shape we cannot read
    │   ├── AuthenticationFailed       wrong credentials / OTP needed / token refused for good
    │   │   ├── OtpRequired            SS wants a one-time password (missing or wrong)
    │   │   └── SessionExpired         a user's SS session can no longer be refreshed
    │   ├── AccessDenied               400 API_AccessDenied: not visible to this account
    │   └── RequestRejected            any other 4xx (validation, state changed, ...)
    │       ├── RequestNotPending      the access request was decided already
    │       ├── NotAReviewer           this account may not review (or cancel) the request
    │       ├── ApprovalRequired       the secret needs an approved access request first
    │       ├── TicketRequired         the secret needs a ticket number
    │       └── CommentRequired        the secret needs a request comment
    └── SlackError                     anything that went wrong talking to Slack
        ├── SlackRateLimited           429; carries retry_after seconds
        ├── SlackUnavailable           connection error, timeout, 5xx
        │   ├── SlackOutcomeUnknown    the request was sent, no answer came: it may have taken effect
        │   └── SlackStopping          the relay is stopping: the call was not made
        └── SlackPermanentError        ok:false with an error retrying will not fix

Errors carry the request path (never a query string with a secret, never a token).
"""

from __future__ import annotations


class RelayError(Exception):
    """Base of every error the relay raises on purpose."""


class ConfigError(RelayError):
    """A configuration key is missing or malformed. `str()` is one line naming the key."""

    def __init__(self, key: str, expected: str, got: object = None):
        self.key = key
        self.expected = expected
        self.detail = f"{key}: {expected}"      # the message without its "config: " prefix
        if got is not None:
            self.detail += f" (got {got!r})"
        super().__init__(f"config: {self.detail}")

    @property
    def problems(self) -> list[ConfigError]:
        return [self]


class ConfigProblems(ConfigError):
    """Several keys are missing or malformed; `str()` has one line per key."""

    def __init__(self, problems: list[ConfigError]):
        first = problems[0]
        super().__init__(first.key, first.expected)
        self._problems = list(problems)
        self.detail = "; ".join(p.detail for p in problems)
        self.args = ("\n".join(str(p) for p in problems),)

    @property
    def problems(self) -> list[ConfigError]:
        return list(self._problems)


class SecretServerError(RelayError):
    """Base for Secret Server failures. `path` is the API path that failed."""

    def __init__(self, message: str, *, path: str = "", status: int | None = None):
        self.path = path
        self.status = status
        super().__init__(f"{message} [{path}]" if path else message)


class SecretServerUnavailable(SecretServerError):
    """Connection error, timeout, 5xx or 429 that outlived the retry budget."""


class SecretServerBadResponse(SecretServerError):
    """SS answered, but not with JSON we can trust (HTML on 200, malformed JSON, bad shape)."""


class AuthenticationFailed(SecretServerError):
    """SS refused the credentials (wrong password, OTP required or wrong, account locked)."""

    def __init__(self, message: str, *, path: str = "", status: int | None = None,
                 otp_required: bool = False):
        self.otp_required = otp_required
        super().__init__(message, path=path, status=status)


class OtpRequired(AuthenticationFailed):
    """SS asked for a one-time password: none was given, or the one given was wrong."""

    def __init__(self, message: str, *, path: str = "", status: int | None = None,
                 otp_required: bool = True):
        super().__init__(message, path=path, status=status, otp_required=otp_required)


class SessionExpired(AuthenticationFailed):
    """A user's SS session is gone (refresh refused): they must sign in again."""


class AccessDenied(SecretServerError):
    """400 API_AccessDenied: the object does not exist or this account may not see it."""


class RequestRejected(SecretServerError):
    """Any other 4xx: validation errors, a state change SS refused, and so on."""

    def __init__(self, message: str, *, path: str = "", status: int | None = None,
                 error_code: str = "", model_state: dict | None = None):
        self.error_code = error_code
        self.model_state = model_state or {}
        super().__init__(message, path=path, status=status)


class RequestNotPending(RequestRejected):
    """The access request is no longer Pending (someone decided, or it was canceled)."""


class NotAReviewer(RequestRejected):
    """SS refused the decision for this account: not a reviewer of the current step, the
    requester reviewing their own request, or someone else cancelling it."""


class ApprovalRequired(RequestRejected):
    """The secret needs an approved access request before it can be used (launched)."""


class TicketRequired(RequestRejected):
    """Creating an access request was refused for want of a ticket number."""


class CommentRequired(RequestRejected):
    """Creating an access request was refused for want of a request comment."""


class SlackError(RelayError):
    """Base for Slack failures. `method` is the Web API method; `error` Slack's error string."""

    def __init__(self, method: str, error: str):
        self.method = method
        self.error = error
        super().__init__(f"slack {method}: {error}")


class SlackRateLimited(SlackError):
    def __init__(self, method: str, retry_after: float):
        self.retry_after = retry_after
        super().__init__(method, f"ratelimited (retry after {retry_after:g}s)")


class SlackUnavailable(SlackError):
    """Connection error, timeout or 5xx: worth retrying later."""


class SlackOutcomeUnknown(SlackUnavailable):
    """The request reached Slack but no answer came back (the connection dropped, a timeout):
    the call may have taken effect. Never repeat a post on this without looking first."""


class SlackStopping(SlackUnavailable):
    """The relay is stopping: the call was not made (its notification stays owed)."""

    def __init__(self, method: str):
        super().__init__(method, "relay stopping; not sent")


class SlackPermanentError(SlackError):
    """ok:false with an error that retrying will not fix (user_not_found, invalid_blocks...)."""
