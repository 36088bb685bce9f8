"""Validate Secret Server JSON into relay.model dataclasses. Pure functions.

Every parser raises `SecretServerBadResponse` when the shape cannot be trusted; `path`
is the API path the data came from (never a query string).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from relay.errors import SecretServerBadResponse
from relay.model import STATUSES, AccessRequest, RequestStatus, Launcher, Person, Secret, StepReviewer


def parse_timestamp(value: Any, tz: tzinfo = timezone.utc, *, path: str = "") -> datetime | None:
    """SS timestamps carry no offset (`2024-05-01T10:00:00.123`): read them in `tz`.
    A trailing `Z` or an explicit offset wins. Returns an aware UTC datetime, or None for
    null, empty and .NET's DateTime.MinValue (year 1)."""
    if value is None or value == "":
        return None
    if type(value) is str and tz is timezone.utc and len(value) >= 19 and value[-1] not in "Zz" \
            and "+" not in value[19:] and "-" not in value[19:]:
        try:        # fast path: SS's usual offset-less form, read as UTC
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise SecretServerBadResponse(f"unreadable timestamp {value[:40]!r}", path=path) from None
        return None if dt.year == 1 else dt.replace(tzinfo=timezone.utc)
    if not isinstance(value, str):
        raise SecretServerBadResponse(f"timestamp is not a string: {type(value).__name__}",
                                      path=path)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise SecretServerBadResponse(f"unreadable timestamp {value[:40]!r}", path=path) from None
    if dt.year == 1:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.astimezone(timezone.utc)


def format_timestamp(dt: datetime, tz: tzinfo = timezone.utc) -> str:
    """A datetime for SS: ISO-8601 without offset, in `tz` (UTC by default), milliseconds,
    like SS writes them. Naive datetimes are refused: the relay only handles aware ones."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("naive datetime: the relay sends only timezone-aware datetimes")
    local = dt.astimezone(tz)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def expires_at(expires_in: Any, now: datetime, *, path: str = "") -> datetime:
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        raise SecretServerBadResponse("token response has no numeric expires_in", path=path) from None
    if seconds <= 0:
        raise SecretServerBadResponse("token response has a non-positive expires_in", path=path)
    return now + timedelta(seconds=seconds)


# ---------------------------------------------------------------------- field helpers
def _obj(data: Any, what: str, path: str) -> dict:
    if not isinstance(data, dict):
        raise SecretServerBadResponse(f"{what}: expected a JSON object, got "
                                      f"{type(data).__name__}", path=path)
    return data


def _int(d: dict, key: str, path: str, *, required: bool = False, default: int | None = None):
    v = d.get(key)
    if v is None:
        if required:
            raise SecretServerBadResponse(f"record without {key}", path=path)
        return default
    if isinstance(v, bool) or not isinstance(v, int):
        raise SecretServerBadResponse(f"{key} is not an integer", path=path)
    return v


def _str(d: dict, key: str, path: str, *, required: bool = False) -> str:
    v = d.get(key)
    if v is None:
        if required:
            raise SecretServerBadResponse(f"record without {key}", path=path)
        return ""
    if not isinstance(v, str):
        raise SecretServerBadResponse(f"{key} is not a string", path=path)
    return v


def _bool(d: dict, key: str, path: str) -> bool:
    v = d.get(key)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise SecretServerBadResponse(f"{key} is not a boolean", path=path)
    return v


def records(page: Any, path: str) -> list:
    """The `records` of a PagingOf<T> envelope."""
    page = _obj(page, "paged listing", path)
    recs = page.get("records")
    if not isinstance(recs, list):
        raise SecretServerBadResponse("paged listing without records", path=path)
    return recs


# ---------------------------------------------------------------------- records
_FINGERPRINT_KEYS = ("status", "reviewStatusMessage", "approverDisplayName", "responseDate", "expirationDate")


def raw_fingerprint(d: dict) -> str:
    """The fields of a listing record that change when the request moves on, joined as they
    came: cheap enough to compute for every record of a large listing."""
    return "|".join([str(d.get(k) or "") for k in _FINGERPRINT_KEYS])


def listing_entry(data: Any, *, path: str = "") -> tuple[int, str]:
    """(id, fingerprint) of a listing record, validating only what that needs."""
    if not isinstance(data, dict):
        raise SecretServerBadResponse("access request: expected a JSON object", path=path)
    rid, status = data.get("secretAccessRequestId"), data.get("status")
    if type(rid) is not int or status not in STATUSES:
        raise SecretServerBadResponse("listing record without a valid id and status", path=path)
    return rid, raw_fingerprint(data)


def parse_access_request(data: Any, tz: tzinfo = timezone.utc, *, path: str = "") -> AccessRequest:
    d = _obj(data, "access request", path)
    status = _str(d, "status", path, required=True)
    if status not in STATUSES:
        raise SecretServerBadResponse(f"unknown request status {status[:30]!r}", path=path)
    folder_id = _int(d, "folderId", path)
    return AccessRequest(
        id=_int(d, "secretAccessRequestId", path, required=True),
        secret_id=_int(d, "secretId", path, required=True),
        secret_name=_str(d, "secretName", path),
        folder_id=folder_id if folder_id is not None and folder_id >= 0 else None,
        requester_id=_int(d, "requestingUserId", path, required=True),
        requester_username=_str(d, "requestUsername", path),
        status=RequestStatus(status),
        comment=_str(d, "requestComment", path),
        ticket=_str(d, "ticketNumber", path),
        requested_at=parse_timestamp(d.get("requestDate"), tz, path=path),
        start=parse_timestamp(d.get("startDate"), tz, path=path),
        expiration=parse_timestamp(d.get("expirationDate"), tz, path=path),
        review_status=_str(d, "reviewStatusMessage", path),
        decided_by=_str(d, "approverDisplayName", path),
        response_comment=_str(d, "responseComment", path),
        decided_at=parse_timestamp(d.get("responseDate"), tz, path=path),
        has_workflow=_bool(d, "hasWorkflow", path),
        fingerprint=raw_fingerprint(d),
    )


def parse_step_reviewers(data: Any, *, path: str = "") -> tuple[StepReviewer, ...]:
    d = _obj(data, "pending request", path)
    raw = d.get("currentStepReviewers") or []
    if not isinstance(raw, list):
        raise SecretServerBadResponse("currentStepReviewers is not a list", path=path)
    out = []
    for r in raw:
        r = _obj(r, "reviewer", path)
        out.append(StepReviewer(display_name=_str(r, "displayName", path),
                                group_id=_int(r, "groupId", path, required=True),
                                is_user=_bool(r, "isUser", path)))
    return tuple(out)


def parse_user(data: Any, *, path: str = "") -> Person:
    """UserModel / CurrentUserModel (`id`, `userName`, `displayName`, `emailAddress`)."""
    d = _obj(data, "user", path)
    return Person(id=_int(d, "id", path, required=True),
                  username=_str(d, "userName", path, required=True),
                  display_name=_str(d, "displayName", path),
                  email=_str(d, "emailAddress", path))


def parse_group_member(data: Any, *, path: str = "") -> Person | None:
    """GroupUserSummary; None for a disabled account (it cannot review anything)."""
    d = _obj(data, "group member", path)
    if d.get("enabled") is False:
        return None
    return Person(id=_int(d, "userId", path, required=True),
                  username=_str(d, "userName", path, required=True),
                  display_name=_str(d, "displayName", path))


def parse_secret(data: Any, *, path: str = "") -> Secret:
    """SecretSummary: metadata only. Unknown keys land in `extra` (never field values: the
    summary endpoints do not carry them)."""
    d = _obj(data, "secret", path)
    known = {"id", "name", "folderId", "folderPath", "secretTemplateName", "requiresApproval",
             "requiresComment", "hasLauncher"}
    folder_id = _int(d, "folderId", path)
    return Secret(id=_int(d, "id", path, required=True),
                  name=_str(d, "name", path, required=True),
                  folder_id=folder_id if folder_id is not None and folder_id >= 0 else None,
                  folder_path=_str(d, "folderPath", path),
                  template_name=_str(d, "secretTemplateName", path),
                  requires_approval=_bool(d, "requiresApproval", path),
                  requires_comment=_bool(d, "requiresComment", path),
                  has_launcher=_bool(d, "hasLauncher", path),
                  extra={k: v for k, v in d.items() if k not in known
                         and k in ("active", "secretTemplateId", "isRestricted", "checkedOut")})


def parse_launcher(data: Any, *, path: str = "") -> Launcher:
    d = _obj(data, "launcher", path)
    hosts = d.get("restrictedHosts") or []
    if not isinstance(hosts, list):
        raise SecretServerBadResponse("restrictedHosts is not a list", path=path)
    return Launcher(launcher_id=_int(d, "launcherId", path, required=True),
                    name=_str(d, "launcherName", path),
                    prompted=bool(d.get("promptedField")),
                    restricted_hosts=tuple(dict.fromkeys(_host_value(h, path) for h in hosts)))


def _host_value(item: Any, path: str) -> str:
    """One `restrictedHosts` entry (`ICategorizedListItemValue`: `{"category", "value"}`):
    its `value` is the host SS expects back as the launch's `promptFieldValue`."""
    value = _obj(item, "restricted host", path).get("value")
    if not isinstance(value, str) or not value.strip():
        raise SecretServerBadResponse("restricted host without a value", path=path)
    return value


def default_vault_url(data: Any, *, path: str = "") -> str:
    """The API URL of a Delinea Platform tenant's default, active vault
    (`GET /vaultbroker/api/vaults`: `vaults[]` with `isDefault`, `isActive`, `connection.url`),
    chosen as Delinea's python-tss-sdk does."""
    vaults = _obj(data, "vault list", path).get("vaults")
    if not isinstance(vaults, list):
        raise SecretServerBadResponse("vault list without vaults", path=path)
    for v in vaults:
        if isinstance(v, dict) and v.get("isDefault") is True and v.get("isActive") is True:
            url = (v.get("connection") or {}).get("url") if isinstance(v.get("connection"), dict) else None
            if isinstance(url, str) and url.startswith(("https://", "http://")):
                return url.rstrip("/")
    raise SecretServerBadResponse("the platform lists no default, active vault with a URL", path=path)
