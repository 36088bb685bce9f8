"""The world behind the Secret Server stand-in: users, groups, folders, secrets, access
requests and tokens, with SS's rules (visibility, who may review, status machine).

No HTTP here: `relay.sandbox.secret_server` routes requests to the `api_*` methods, which
return JSON-ready data or raise `ApiError(status, body)`. Every method takes the world lock.

Stand-in assumptions (not confirmed against a real SS; see
Delinea's REST API reference at docs.delinea.com and github.com/DelineaXPM/python-tss-sdk):
- A requester reviewing their own request gets 400 `{"message": "You cannot review this
  request."}` (no errorCode); a caller who cannot see the request gets 400 API_AccessDenied.
- A request that is no longer Pending answers a PUT with 400
  `{"message": "The request is no longer pending.", "errorCode": "API_RequestNotPending"}`
  (the error code is invented).
- Launching a secret that requires approval without an Approved request of the caller:
  400 `{"message": "...", "errorCode": "API_ApprovalRequired"}` (invented).
- Approved requests are not expired by the clock; call `expire()`.
- Listings honour `sortBy[0].name` (a SecretAccessModel property, any case, as SS's PowerShell
  module sends `SecretId`) and `sortBy[0].direction`, nulls lowest (SQL Server's order), and
  echo them in `sortBy`; an unknown name is ignored. A canceled request has no `responseDate`.
- Missing / wrong OTP: 400 `{"error": "invalid_grant", "error_description": "...OTP..."}`.
- Listings without `sortBy` come newest first (SS's default order is not documented).
- A launch answers `baseUrl` "sslauncher:///" and `ssUrl` "guid=...&url=..." (the model's
  field descriptions; the real values are not published).
- Platform mode: `/health` answers `{"Healthy": true}`; service users are SS users (client id
  = username, client secret = password); OAuth2's error strings.
"""

from __future__ import annotations

import logging
import secrets as _random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

ACCESS_DENIED = {"errorCode": "API_AccessDenied", "message": "Access denied"}
NOT_PENDING = {"message": "The request is no longer pending.", "errorCode": "API_RequestNotPending"}
CANNOT_REVIEW = {"message": "You cannot review this request."}
REFRESH_TTL_EXTRA = timedelta(minutes=15)   # SS: refresh TTL = session timeout + 15 min


class ApiError(Exception):
    """An HTTP error answer: status and JSON body."""

    def __init__(self, status: int, body: Any, headers: dict | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def bad_request(field_name: str, problem: str) -> ApiError:
    return ApiError(400, {"message": "The request is invalid.", "messageDetail": problem,
                          "errorCode": "", "modelState": {field_name: [problem]}})


def now() -> datetime:
    """The stand-in's clock (freezegun-friendly: looks datetime up at call time)."""
    return datetime.now(timezone.utc)


def ss_time(dt: datetime | None, tz: tzinfo = UTC) -> str | None:
    """Render like SS: no offset, milliseconds, in the server's zone `tz` (UTC unless the
    stand-in plays a server that answers in local time): 2024-05-01T10:00:00.123."""
    if dt is None:
        return None
    dt = dt.astimezone(tz)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def _categorized(host: Any) -> dict:
    """A restricted host as SS lists it (`ICategorizedListItemValue`); world builders may
    give a plain host name, which lands in the "Servers" category."""
    if isinstance(host, dict):
        return {"category": host.get("category"), "value": host.get("value")}
    return {"category": "Servers", "value": str(host)}


def _matches(secret: SecretRec, text: str) -> bool:
    """`filter.searchText` as SS documents it: the secret's name, a field value, or the
    contents of a list field. Only whether it matches is used: values are never returned."""
    if not text or text in secret.name.lower():
        return True
    for value in secret.fields.values():
        items = value if isinstance(value, (list, tuple)) else [value]
        if any(text in str(item).lower() for item in items):
            return True
    return False


def parse_time(value: Any, name: str, tz: tzinfo = UTC) -> datetime | None:
    """Parse an ISO-8601 date sent by a client; offset-less means the server's zone `tz`."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise bad_request(f"args.{name}", f"{name} must be an ISO-8601 string.")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"args.{name}", f"{name} is not a valid date.") from None
    return dt.replace(tzinfo=tz).astimezone(timezone.utc) if dt.tzinfo is None \
        else dt.astimezone(timezone.utc)


@dataclass
class User:
    id: int
    username: str
    password: str = field(repr=False)
    display_name: str
    email: str
    otp: str | None = field(default=None, repr=False)
    domain: str | None = None
    personal_group: int = 0
    enabled: bool = True
    created: datetime | None = None
    last_login: datetime | None = None
    last_activity: datetime | None = None


@dataclass
class Group:
    id: int
    name: str
    members: list[int]
    personal_of: int | None = None


@dataclass
class Folder:
    id: int
    name: str
    path: str


@dataclass
class SecretRec:
    id: int
    name: str
    folder_id: int | None
    template_name: str
    viewers: tuple[int, ...]
    requires_approval: bool
    approvers: tuple[int, ...]
    requires_comment: bool
    requires_ticket: bool
    launchers: list[dict]
    fields: dict = field(repr=False)


@dataclass
class RequestRec:
    id: int
    secret_id: int
    requester_id: int
    comment: str
    ticket: str
    requested: datetime
    start: datetime | None
    expiration: datetime | None
    steps: list[list[int]]
    has_workflow: bool
    step: int = 0
    status: str = "Pending"
    approver_name: str = ""
    response_comment: str = ""
    response_date: datetime | None = None
    removed: bool = False
    actions: list[tuple[str, int | None]] = field(default_factory=list)  # (what, by user id)


@dataclass
class Token:
    user_id: int
    expires: datetime


class World:
    """All state of the stand-in, guarded by one re-entrant lock."""

    def __init__(self, *, base_url_fn, token_ttl_seconds: int = 1200, default_take: int = 10):
        self.lock = threading.RLock()
        self._base_url = base_url_fn
        self.token_ttl_seconds = token_ttl_seconds
        self.default_take = default_take
        # The most records a page holds whatever `take` asks (SS's own cap is not documented:
        # PowerShell's module asks int.MaxValue; a test may lower it to check a client that
        # asks more than it gets).
        self.max_take = 1000
        self.v1_secrets_enabled = True
        self.v1_secrets_missing = 404    # how GET /v1/secrets answers when disabled (404 or 405)
        self.honour_sort = True          # False: `sortBy` is ignored (and not echoed)
        self.tz: tzinfo = UTC   # the zone SS writes its offset-less timestamps in
        self.users: dict[int, User] = {}
        self.groups: dict[int, Group] = {}
        self.folders: dict[int, Folder] = {}
        self.secrets: dict[int, SecretRec] = {}
        self.requests: dict[int, RequestRec] = {}
        self.recent: dict[int, list[int]] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self._all_tokens_ever: set[str] = set()
        self._used_ids: set[int] = set()
        self._next = {"user": 1, "group": 100, "folder": 10, "secret": 1000}
        self._next_request = 1
        # called as fn(change, request_id) when a request is created, approved (any step),
        # denied or canceled: what SS's Event Pipelines react to (relay.sandbox.pipeline)
        self.listeners: list[Callable[[str, int], None]] = []

    # ---------------------------------------------------------------- building
    def _alloc(self, kind: str) -> int:
        n = self._next[kind]
        while n in self._used_ids:
            n += 1
        self._next[kind] = n + 1
        self._used_ids.add(n)
        return n

    def add_user(self, username, password, *, display_name=None, email=None, otp=None,
                 domain=None) -> int:
        with self.lock:
            uid = self._alloc("user")
            gid = self._alloc("group")
            self.users[uid] = User(uid, username, password, display_name or username,
                                   email or f"{username}@example.com", otp, domain, gid,
                                   created=now())
            self.groups[gid] = Group(gid, username, [uid], personal_of=uid)
            return uid

    def personal_group(self, user_id: int) -> int:
        with self.lock:
            return self.users[user_id].personal_group

    def add_group(self, name: str, members: list[int]) -> int:
        with self.lock:
            gid = self._alloc("group")
            self.groups[gid] = Group(gid, name, list(members))
            return gid

    def add_to_group(self, group_id: int, user_id: int) -> None:
        with self.lock:
            if user_id not in self.groups[group_id].members:
                self.groups[group_id].members.append(user_id)

    def add_folder(self, name: str, path: str | None = None) -> int:
        with self.lock:
            fid = self._alloc("folder")
            self.folders[fid] = Folder(fid, name, path or f"\\{name}")
            return fid

    def add_secret(self, name, *, folder_id=None, template_name="Password", viewers=(),
                   requires_approval=False, approvers=(), requires_comment=False,
                   requires_ticket=False, launchers=(), fields=None) -> int:
        with self.lock:
            sid = self._alloc("secret")
            self.secrets[sid] = SecretRec(
                sid, name, folder_id, template_name, tuple(viewers), requires_approval,
                tuple(self._as_group(g) for g in approvers), requires_comment, requires_ticket,
                [dict(x) for x in launchers], dict(fields or {}))
            return sid

    def _as_group(self, principal: int) -> int:
        """A user id given where a group is expected means that user's personal group."""
        return self.users[principal].personal_group if principal in self.users else principal

    def touch_recent(self, user_id: int, secret_id: int) -> None:
        with self.lock:
            lst = self.recent.setdefault(user_id, [])
            if secret_id in lst:
                lst.remove(secret_id)
            lst.insert(0, secret_id)

    def secret_field_values(self) -> set[str]:
        with self.lock:
            return {str(v) for s in self.secrets.values() for v in s.fields.values() if v}

    def issued_tokens(self) -> set[str]:
        """Every access and refresh token ever issued (for leak sweeps in tests)."""
        with self.lock:
            return set(self._all_tokens_ever)

    # ---------------------------------------------------------------- requests (out of band)
    def create_request(self, secret_id, requester_id, *, comment="", ticket="", start=None,
                       expiration=None, steps=None) -> int:
        with self.lock:
            secret = self.secrets[secret_id]
            if steps is None:
                steps_l, workflow = [list(secret.approvers)], False
            else:
                steps_l = [[self._as_group(g) for g in s] for s in steps]
                workflow = True
            rid = self._next_request
            self._next_request += 1
            self.requests[rid] = RequestRec(rid, secret_id, requester_id, comment, ticket, now(),
                                            start, expiration, steps_l, workflow)
            self.requests[rid].actions.append(("Created", requester_id))
            self._changed("created", rid)
            return rid

    def _changed(self, change: str, request_id: int) -> None:
        for fn in list(self.listeners):
            try:
                fn(change, request_id)
            except Exception:           # a listener's trouble never changes SS's answer
                log.exception("request change listener failed")

    def _req(self, request_id: int) -> RequestRec:
        rec = self.requests.get(request_id)
        if rec is None or rec.removed:
            raise ApiError(400, ACCESS_DENIED)
        return rec

    def approve(self, request_id, by_user_id, comment="", expiration=None, start=None) -> None:
        with self.lock:
            rec = self._req(request_id)
            if rec.status != "Pending":
                raise ApiError(400, NOT_PENDING)
            rec.actions.append(("Approved", by_user_id))
            if rec.step + 1 < len(rec.steps):
                rec.step += 1
                self._changed("approved", rec.id)
                return
            rec.status = "Approved"
            rec.start = start or rec.start or now()
            rec.expiration = expiration or rec.expiration or (now() + timedelta(hours=8))
            self._decided(rec, by_user_id, comment)
            self._changed("approved", rec.id)

    def deny(self, request_id, by_user_id, comment) -> None:
        with self.lock:
            rec = self._req(request_id)
            if rec.status != "Pending":
                raise ApiError(400, NOT_PENDING)
            rec.status = "Denied"
            rec.actions.append(("Denied", by_user_id))
            self._decided(rec, by_user_id, comment)
            self._changed("denied", rec.id)

    def _decided(self, rec: RequestRec, by_user_id: int | None, comment: str) -> None:
        rec.approver_name = self.users[by_user_id].display_name if by_user_id else ""
        rec.response_comment = comment or ""
        rec.response_date = now()

    def cancel(self, request_id) -> None:
        with self.lock:
            rec = self._req(request_id)
            if rec.status != "Pending":
                raise ApiError(400, NOT_PENDING)
            rec.status = "Canceled"
            rec.actions.append(("Canceled", rec.requester_id))
            self._changed("canceled", rec.id)

    def expire(self, request_id) -> None:
        with self.lock:
            rec = self._req(request_id)
            if rec.status != "Approved":
                raise ValueError(f"request {request_id} is {rec.status}, not Approved")
            rec.status = "Expired"
            rec.expiration = min(rec.expiration or now(), now())

    def advance_step(self, request_id) -> None:
        with self.lock:
            rec = self._req(request_id)
            if rec.step + 1 >= len(rec.steps):
                raise ValueError(f"request {request_id} is on its last step")
            rec.step += 1

    def remove(self, request_id) -> None:
        with self.lock:
            self.requests[request_id].removed = True

    def get_request(self, request_id) -> dict:
        with self.lock:
            return self._request_model(self.requests[request_id], None)

    # ---------------------------------------------------------------- rules
    def _groups_of(self, user_id: int) -> set[int]:
        return {g.id for g in self.groups.values() if user_id in g.members}

    def _can_see_request(self, rec: RequestRec, user_id: int) -> bool:
        if rec.removed:
            return False
        if rec.requester_id == user_id:
            return True
        mine = self._groups_of(user_id)
        return any(mine.intersection(step) for step in rec.steps)

    def _is_current_reviewer(self, rec: RequestRec, user_id: int) -> bool:
        return bool(self._groups_of(user_id).intersection(rec.steps[rec.step]))

    def _can_see_secret(self, secret: SecretRec, user_id: int) -> bool:
        return user_id in secret.viewers or bool(self._groups_of(user_id).intersection(secret.viewers))

    def _has_approved_access(self, secret_id: int, user_id: int) -> bool:
        return any(r.secret_id == secret_id and r.requester_id == user_id
                   and r.status == "Approved" and not r.removed for r in self.requests.values())

    # ---------------------------------------------------------------- models
    def _request_model(self, rec: RequestRec, caller: int | None) -> dict:
        secret = self.secrets[rec.secret_id]
        requester = self.users[rec.requester_id]
        n = len(rec.steps)
        if rec.status == "Pending":
            review = f"Step {rec.step + 1} of {n}" if rec.has_workflow else "Pending approval"
        else:
            review = rec.status
        return {
            "secretAccessRequestId": rec.id,
            "secretId": secret.id,
            "secretName": secret.name,
            "folderId": secret.folder_id,
            "requestingUserId": requester.id,
            "requestUsername": requester.username,
            "requestComment": rec.comment,
            "requestDate": ss_time(rec.requested, self.tz),
            "startDate": ss_time(rec.start, self.tz),
            "expirationDate": ss_time(rec.expiration, self.tz),
            "status": rec.status,
            "statusDescription": rec.status,
            "reviewStatusMessage": review,
            "approverDisplayName": rec.approver_name or None,
            "responseComment": rec.response_comment or None,
            "responseDate": ss_time(rec.response_date, self.tz),
            "completed": rec.status != "Pending",
            "hasWorkflow": rec.has_workflow,
            "accessRequestWorkflowMapId": 1 if rec.has_workflow else 0,
            "currentUserRestrictedFromReviewing": None if caller is None else caller == rec.requester_id,
            "ticketNumber": rec.ticket or None,
            "ticketSystemId": None,
        }

    def _user_model(self, u: User) -> dict:
        return {"id": u.id, "userName": u.username, "displayName": u.display_name,
                "emailAddress": u.email, "enabled": u.enabled, "domainId": -1 if not u.domain else 1,
                "isApplicationAccount": False, "isLockedOut": False, "slackId": None,
                "twoFactor": bool(u.otp), "created": ss_time(u.created, self.tz),
                "lastLogin": ss_time(u.last_login, self.tz),
                "lastSessionActivity": ss_time(u.last_activity, self.tz)}

    def _secret_summary(self, s: SecretRec) -> dict:
        folder = self.folders.get(s.folder_id) if s.folder_id is not None else None
        return {"id": s.id, "name": s.name, "folderId": s.folder_id if s.folder_id is not None else -1,
                "folderPath": folder.path if folder else "", "secretTemplateId": 6000,
                "secretTemplateName": s.template_name, "siteId": 1, "active": True,
                "isRestricted": s.requires_approval or s.requires_comment,
                "requiresApproval": s.requires_approval, "requiresComment": s.requires_comment,
                "checkedOut": False, "checkOutEnabled": False, "hasLauncher": bool(s.launchers),
                "lastHeartBeatStatus": "Pending", "extendedFields": None}

    # ---------------------------------------------------------------- auth
    def issue_tokens(self, user_id: int) -> dict:
        access, refresh = _random.token_urlsafe(24), _random.token_urlsafe(24)
        t = now()
        self.users[user_id].last_login = self.users[user_id].last_activity = t
        self.tokens[access] = Token(user_id, t + timedelta(seconds=self.token_ttl_seconds))
        self.refresh_tokens[refresh] = Token(
            user_id, t + timedelta(seconds=self.token_ttl_seconds) + REFRESH_TTL_EXTRA)
        self._all_tokens_ever.update((access, refresh))
        return {"access_token": access, "token_type": "bearer",
                "expires_in": self.token_ttl_seconds, "refresh_token": refresh}

    def api_token(self, form: dict[str, str], otp_header: str | None) -> dict:
        with self.lock:
            grant = form.get("grant_type", "")
            if grant == "password":
                user = next((u for u in self.users.values() if u.username.lower()
                             == form.get("username", "").lower()), None)
                domain = form.get("domain") or None
                if (user is None or not user.enabled or user.password != form.get("password")
                        or (domain or "").lower() != (user.domain or "").lower()):
                    raise ApiError(400, {"error": "invalid_grant",
                                         "error_description": "Login failed."})
                if user.otp is not None:
                    if not otp_header:
                        raise ApiError(400, {"error": "invalid_grant", "error_description":
                                             "Login failed. An OTP is required for this user."})
                    if otp_header.strip() != user.otp:
                        raise ApiError(400, {"error": "invalid_grant",
                                             "error_description": "Login failed. Invalid OTP."})
                return self.issue_tokens(user.id)
            if grant == "refresh_token":
                tok = self.refresh_tokens.pop(form.get("refresh_token", ""), None)  # single use
                if tok is None or tok.expires <= now():
                    raise ApiError(400, {"error": "invalid_grant"})
                return self.issue_tokens(tok.user_id)
            raise ApiError(400, {"error": "unsupported_grant_type"})

    def platform_token(self, form: dict[str, str]) -> dict:
        """A Delinea Platform service user's client-credentials grant (scope xpmheadless).
        Here a service user is an SS user: client_id its username, client_secret its password.
        Shape and error strings of the real platform are not published: OAuth2's are used."""
        with self.lock:
            if form.get("grant_type") != "client_credentials":
                raise ApiError(400, {"error": "unsupported_grant_type"})
            if form.get("scope") != "xpmheadless":
                raise ApiError(400, {"error": "invalid_scope"})
            user = next((u for u in self.users.values()
                         if u.username.lower() == form.get("client_id", "").lower()), None)
            if user is None or not user.enabled or user.password != form.get("client_secret"):
                raise ApiError(400, {"error": "invalid_client"})
            tokens = self.issue_tokens(user.id)
            self.refresh_tokens.pop(tokens.pop("refresh_token"), None)   # none for this grant
            return {**tokens, "scope": "xpmheadless"}

    def user_for_token(self, token: str) -> User | None:
        with self.lock:
            tok = self.tokens.get(token)
            if tok is None:
                return None
            if tok.expires <= now():
                del self.tokens[token]
                return None
            user = self.users.get(tok.user_id)
            if user is not None:
                user.last_activity = now()
            return user

    def revoke(self, token: str) -> None:
        with self.lock:
            self.tokens.pop(token, None)

    def expire_all_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # ---------------------------------------------------------------- API handlers
    # Each takes (caller User, params dict, body) and returns JSON-ready data.
    def api_current_user(self, caller: User, q, body, **_):
        with self.lock:                     # CurrentUserModel
            return {"id": caller.id, "userName": caller.username,
                    "displayName": caller.display_name, "emailAddress": caller.email,
                    "permissions": [], "dateOptionId": 1, "timeOptionId": 1, "userLcid": 1033,
                    "userTheme": "Default", "platformIntegrationType": "None"}

    def api_user(self, caller, q, body, *, id):
        with self.lock:
            u = self.users.get(int(id))
            if u is None:
                raise ApiError(400, ACCESS_DENIED)
            return self._user_model(u)

    def api_group_users(self, caller, q, body, *, id):
        with self.lock:
            g = self.groups.get(int(id))
            if g is None:
                raise ApiError(400, ACCESS_DENIED)
            rows = [{"groupId": g.id, "groupName": g.name, "userId": u.id, "userName": u.username,
                     "displayName": u.display_name, "enabled": u.enabled}
                    for u in (self.users[m] for m in sorted(g.members))]
            return self.page(rows, q)

    def api_folder(self, caller, q, body, *, id):
        with self.lock:
            f = self.folders.get(int(id))
            if f is None:
                raise ApiError(400, ACCESS_DENIED)
            return {"id": f.id, "folderName": f.name, "folderPath": f.path, "parentFolderId": -1}

    def api_list_requests(self, caller, q, body, **_):
        with self.lock:
            status = q.get("filter.status")
            mine_only = q.get("filter.isMyRequest", "").lower() == "true"
            # SS's default order is not documented: newest first here, so a client that pages
            # without a sort order sees pages shift when requests come and go
            rows = [self._request_model(r, caller.id) for r in sorted(self.requests.values(),
                                                                      key=lambda r: -r.id)
                    if self._can_see_request(r, caller.id)
                    and (not status or r.status.lower() == status.lower())
                    and (not mine_only or r.requester_id == caller.id)]
            return self.page(rows, q)

    def api_get_request(self, caller, q, body, *, id):
        with self.lock:
            rec = self._visible_request(int(id), caller)
            return self._request_model(rec, caller.id)

    def _visible_request(self, request_id: int, caller: User) -> RequestRec:
        rec = self.requests.get(request_id)
        if rec is None or not self._can_see_request(rec, caller.id):
            raise ApiError(400, ACCESS_DENIED)
        return rec

    def api_pending(self, caller, q, body, *, id):
        with self.lock:
            rec = self._visible_request(int(id), caller)
            m = self._request_model(rec, caller.id)
            reviewers = []
            if rec.status == "Pending":
                for gid in rec.steps[rec.step]:
                    g = self.groups[gid]
                    if g.personal_of is not None:
                        reviewers.append({"displayName": self.users[g.personal_of].display_name,
                                          "groupId": gid, "isUser": True})
                    else:
                        reviewers.append({"displayName": g.name, "groupId": gid, "isUser": False})
            m["currentStepApprovers"] = [r["displayName"] for r in reviewers]
            m["currentStepReviewers"] = reviewers
            return m

    def api_create_request(self, caller, q, body, **_):
        if not isinstance(body, dict) or not isinstance(body.get("secretId"), int):
            raise bad_request("args.SecretId", "The SecretId field is required.")
        with self.lock:
            secret = self.secrets.get(body["secretId"])
            if secret is None or not self._can_see_secret(secret, caller.id):
                raise ApiError(400, ACCESS_DENIED)
            comment = body.get("requestComment") or ""
            ticket = body.get("ticketNumber") or ""
            if secret.requires_comment and not comment.strip():
                raise bad_request("args.RequestComment", "A comment is required for this secret.")
            if secret.requires_ticket and not ticket.strip():
                raise bad_request("args.TicketNumber", "A ticket number is required for this secret.")
            rid = self.create_request(secret.id, caller.id, comment=comment, ticket=ticket,
                                      start=parse_time(body.get("startDate"), "StartDate", self.tz),
                                      expiration=parse_time(body.get("expirationDate"),
                                                            "ExpirationDate", self.tz))
            return self._request_model(self.requests[rid], caller.id)

    def api_update_request(self, caller, q, body, **_):
        if not isinstance(body, dict) or not isinstance(body.get("secretAccessRequestId"), int):
            raise bad_request("args.SecretAccessRequestId",
                              "The SecretAccessRequestId field is required.")
        with self.lock:
            rec = self._visible_request(body["secretAccessRequestId"], caller)
            status = body.get("status")
            if status not in ("Approved", "Denied", "Canceled"):
                raise bad_request("args.Status", "Status must be Approved, Denied or Canceled.")
            if rec.status != "Pending":
                raise ApiError(400, NOT_PENDING)
            comment = body.get("responseComment") or ""
            if status == "Canceled":
                if caller.id != rec.requester_id:
                    raise ApiError(400, ACCESS_DENIED)
                self.cancel(rec.id)
                message = "The request was canceled."
            else:
                if caller.id == rec.requester_id or not self._is_current_reviewer(rec, caller.id):
                    raise ApiError(400, CANNOT_REVIEW)
                if status == "Approved":
                    expiration = parse_time(body.get("expirationDate"), "ExpirationDate", self.tz)
                    if expiration is None:
                        raise bad_request("args.ExpirationDate",
                                          "An expiration date is required to approve.")
                    start = parse_time(body.get("startDate"), "StartDate", self.tz)
                    self.approve(rec.id, caller.id, comment, expiration=expiration, start=start)
                    message = "The request was approved."
                else:
                    if not comment.strip():
                        raise bad_request("args.ResponseComment",
                                          "A comment is required to deny.")
                    self.deny(rec.id, caller.id, comment)
                    message = "The request was denied."
            m = self._request_model(rec, caller.id)
            m["actionResultMessage"] = message
            return m

    def api_secrets(self, caller, q, body, *, version):
        with self.lock:
            if version == "1" and self.v1_secrets_missing == 405:
                raise ApiError(405, {"message": "The requested resource does not support http "
                                                "method 'GET'."})
            if version == "1" and not self.v1_secrets_enabled:
                raise ApiError(404, {"message": "No HTTP resource was found that matches the "
                                                "request URI."})
            text = q.get("filter.searchText", q.get("paging.filter.searchText", "")).lower()
            restricted = q.get("filter.includeRestricted", "").lower() == "true"
            scope = q.get("filter.scope", "All").lower()
            if scope in ("recent", "2"):
                candidates = [self.secrets[i] for i in self.recent.get(caller.id, [])
                              if i in self.secrets]
            else:
                candidates = sorted(self.secrets.values(), key=lambda s: s.id)
            rows = [self._secret_summary(s) for s in candidates
                    if self._can_see_secret(s, caller.id) and _matches(s, text)
                    and (restricted or not (s.requires_approval or s.requires_comment))]
            return self.page(rows, q)

    def _visible_secret(self, secret_id: int, caller: User) -> SecretRec:
        s = self.secrets.get(secret_id)
        if s is None or not self._can_see_secret(s, caller.id):
            raise ApiError(400, ACCESS_DENIED)
        return s

    def api_secret_summary(self, caller, q, body, *, id):
        with self.lock:
            return self._secret_summary(self._visible_secret(int(id), caller))

    def api_launchers(self, caller, q, body, **_):
        try:
            secret_id = int(q.get("filter.secretId", ""))
        except ValueError:
            raise bad_request("filter.secretId", "filter.secretId is required.") from None
        with self.lock:
            s = self._visible_secret(secret_id, caller)
            rows = [{"launcherId": x["launcherId"], "launcherName": x["launcherName"],
                     "application": None, "isCustom": False, "customLauncherId": None,
                     "promptedField": ({"name": "Machine", "promptableField": True}
                                       if x.get("promptedField") else None),
                     "restrictedHost": bool(x.get("restrictedHosts")),
                     "restrictedHosts": [_categorized(h) for h in x.get("restrictedHosts", [])],
                     "approvedList": None} for x in s.launchers]
            return self.page(rows, q)

    def api_launch(self, caller, q, body, **_):
        if not isinstance(body, dict) or not isinstance(body.get("secretId"), int):
            raise bad_request("args.SecretId", "The SecretId field is required.")
        with self.lock:
            s = self._visible_secret(body["secretId"], caller)
            launcher = next((x for x in s.launchers if x["launcherId"] == body.get("launcherId")),
                            None)
            if launcher is None:
                raise bad_request("args.LauncherId", "The launcher is not available on this secret.")
            if launcher.get("promptedField") and not body.get("promptFieldValue"):
                raise bad_request("args.PromptFieldValue", "A value is required for this launcher.")
            if s.requires_approval and not self._has_approved_access(s.id, caller.id):
                raise ApiError(400, {"message": "Approval is required to access this secret.",
                                     "errorCode": "API_ApprovalRequired"})
            self.touch_recent(caller.id, s.id)
            guid = _random.token_hex(16)
            base = self._base_url()
            # LaunchedSecretModel: SS's models call baseUrl "the url to the launcher", ssUrl "the
            # query string for the launcher" and encodedUrl "the url to Secret Server"; the
            # values' exact form is not published (the launcher app registers `sslauncher`)
            return {"guid": guid, "launcherType": launcher["launcherName"],
                    "launcherTypeId": launcher["launcherId"], "sessionGuid": None, "apiVersion": 1,
                    "baseUrl": "sslauncher:///",
                    "ssUrl": f"guid={guid}&url={quote(base, safe='')}",
                    "encodedUrl": quote(base, safe="")}

    # ---------------------------------------------------------------- paging
    def page(self, rows: list, q: dict) -> dict:
        """The PagingOf<T> envelope. `take` is capped at 1000 here: SS's real cap is unknown
        (PowerShell sends 2147483647 and it is accepted)."""
        def num(*names, default):
            for n in names:
                if q.get(n, "") != "":
                    try:
                        return int(q[n])
                    except ValueError:
                        raise bad_request(n, f"{n} must be an integer.") from None
            return default
        sort_by: list = []
        if self.honour_sort:
            direction = q.get("sortBy[0].direction", q.get("paging.sortBy[0].direction", "asc"))
            if direction.lower() not in ("asc", "desc"):
                raise bad_request("sortBy[0].direction", "direction must be asc or desc.")
            rows, sort_by = sort_records(rows, q)
        skip = max(0, num("skip", "paging.skip", default=0))
        take = min(self.max_take, max(1, num("take", "paging.take", default=self.default_take)))
        total = len(rows)
        records = rows[skip:skip + take]
        has_next = skip + take < total
        return {"batchCount": (total + take - 1) // take, "currentPage": skip // take + 1,
                "hasNext": has_next, "hasPrev": skip > 0,
                "nextSkip": skip + take if has_next else None,
                "pageCount": (total + take - 1) // take, "prevSkip": max(0, skip - take),
                "records": records, "severity": "None", "skip": skip, "sortBy": sort_by,
                "success": True, "take": take, "total": total}


def sort_records(rows: list[dict], q: dict) -> tuple[list[dict], list[dict]]:
    """Apply `sortBy[0].name` / `sortBy[0].direction` (asc by default) to model records, and
    the `sortBy` echo of the paging envelope. The name is a model property, matched without
    regard to case (SS's PowerShell module sends `SecretId`). Nulls sort lowest, as in SQL
    Server: first ascending, last descending. An unknown name leaves the order alone and is
    not echoed (stand-in assumption: what SS does with one is not documented)."""
    name = q.get("sortBy[0].name", q.get("paging.sortBy[0].name", ""))
    if not name or not rows:
        return rows, []
    key = next((k for k in rows[0] if k.lower() == name.lower()), None)
    if key is None:
        return rows, []
    asked = q.get("sortBy[0].direction", q.get("paging.sortBy[0].direction", ""))
    direction = "desc" if asked.lower() == "desc" else "asc"
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    present.sort(key=lambda r: r[key], reverse=direction == "desc")
    ordered = missing + present if direction == "asc" else present + missing
    return ordered, [{"name": name, "direction": direction, "priority": 0}]
