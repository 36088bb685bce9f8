"""A loopback Secret Server REST stand-in that speaks real HTTP.

    with SecretServerStandIn() as ss:
        alice = ss.add_user("alice", "pw")
        ...
        client = SecretServerClient(ss.base_url, ...)

One job: pretend to be SS. World state and SS's rules live in `relay.sandbox.ss_world`;
this module routes HTTP to it, injects faults and records what it was asked.

Paths in `Call.path` and in `fail(path_regex)` are relative to the base URL
(e.g. "/api/v1/secret-access-requests"), without the query string.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from relay.sandbox.loopback import LoopbackHandler
from relay.sandbox.ss_world import ACCESS_DENIED, ApiError, World, now

log = logging.getLogger(__name__)

PREFIX = "/SecretServer"
HANG_LIMIT_SECONDS = 30.0
_REDACTED_FORM_FIELDS = ("password", "refresh_token")


@dataclass(frozen=True)
class Call:
    """One request the stand-in received. Token-endpoint secrets are redacted from `body`."""

    method: str
    path: str
    query: dict
    user: str | None
    body: Any
    status: int = 0          # the status the stand-in answered with (0 while hanging)
    at: float = 0.0          # time.monotonic() when the request arrived
    done_at: float = 0.0     # time.monotonic() when the answer was sent (0 while hanging)


@dataclass
class _Fault:
    regex: re.Pattern
    times: int
    status: int
    retry_after: float | None
    html: bool
    hang: threading.Event | None
    body: Any
    after: int = 0


# (method, path regex, World handler name, needs a bearer token)
_ROUTES: list[tuple[str, re.Pattern, str, bool]] = [
    (m, re.compile(rx + r"\Z", re.IGNORECASE), h, auth) for m, rx, h, auth in [
        ("POST", r"/oauth2/token", "token", False),
        ("GET", r"/api/v1/healthcheck", "healthcheck", False),
        ("GET", r"/api/v1/version", "version", True),
        ("POST", r"/api/v1/oauth-expiration", "revoke", True),
        ("GET", r"/api/v1/users/current", "api_current_user", True),
        ("GET", r"/api/v1/users/(?P<id>\d+)", "api_user", True),
        ("GET", r"/api/v1/groups/(?P<id>\d+)/users", "api_group_users", True),
        ("GET", r"/api/v1/folders/(?P<id>\d+)", "api_folder", True),
        ("GET", r"/api/v1/secret-access-requests", "api_list_requests", True),
        ("POST", r"/api/v1/secret-access-requests", "api_create_request", True),
        ("PUT", r"/api/v1/secret-access-requests", "api_update_request", True),
        ("GET", r"/api/v1/secret-access-requests/(?P<id>\d+)", "api_get_request", True),
        ("GET", r"/api/v1/secret-access-requests/(?P<id>\d+)/pending", "api_pending", True),
        ("GET", r"/api/v(?P<version>[12])/secrets", "api_secrets", True),
        ("GET", r"/api/v1/secrets/(?P<id>\d+)/summary", "api_secret_summary", True),
        ("GET", r"/api/v2/launchers/secret", "api_launchers", True),
        ("POST", r"/api/v1/launchers/secret", "api_launch", True),
    ]
]
_NOT_FOUND = {"message": "No HTTP resource was found that matches the request URI."}
PLATFORM_TOKEN_PATH = "/identity/api/oauth2/token/xpmplatform"
VAULTS_PATH = "/vaultbroker/api/vaults"
_PLATFORM_PATHS = ("/health", PLATFORM_TOKEN_PATH, VAULTS_PATH)


class SecretServerStandIn:
    """Secret Server over loopback HTTP. Thread-safe; world-building methods return ids."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token_ttl_seconds: int = 1200,
                 default_take: int = 10, platform: bool = False):
        self._host, self._port = host, port
        # platform: also act as a Delinea Platform tenant at `platform_url` (health, service
        # user token, vault broker); the vault (this Secret Server) stays at `base_url`
        self.platform = platform
        self.world = World(base_url_fn=lambda: self.base_url, token_ttl_seconds=token_ttl_seconds,
                           default_take=default_take)
        self.auth_failure_status = 401
        self.calls: list[Call] = []
        self._calls_cond = threading.Condition()
        self._faults: list[_Fault] = []
        self._hooks: list[tuple[re.Pattern, Callable[[Call], None]]] = []
        self._faults_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> "SecretServerStandIn":
        handler = type("_Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer((self._host, self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="ss-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._faults_lock:
            for f in self._faults:          # release anything still hanging
                if f.hang is not None:
                    f.hang.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "SecretServerStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return self.platform_url + PREFIX

    @property
    def platform_url(self) -> str:
        """The tenant's address in platform mode (the vault is at `base_url`)."""
        if self._server is None:
            raise RuntimeError("stand-in not started")
        host, port = self._server.server_address[:2]
        if isinstance(host, bytes):   # an AF_INET server reports str; typeshed allows bytes too
            host = host.decode()
        return f"http://{host}:{port}"

    # ---------------------------------------------------------------- world (delegated)
    @property
    def token_ttl_seconds(self) -> int:
        return self.world.token_ttl_seconds

    @token_ttl_seconds.setter
    def token_ttl_seconds(self, value: int) -> None:
        self.world.token_ttl_seconds = value

    @property
    def honour_sort(self) -> bool:
        return self.world.honour_sort

    @honour_sort.setter
    def honour_sort(self, value: bool) -> None:
        self.world.honour_sort = value

    @property
    def v1_secrets_enabled(self) -> bool:
        return self.world.v1_secrets_enabled

    @v1_secrets_enabled.setter
    def v1_secrets_enabled(self, value: bool) -> None:
        self.world.v1_secrets_enabled = value

    def add_user(self, username: str, password: str, *, display_name: str | None = None,
                 email: str | None = None, otp: str | None = None, domain: str | None = None) -> int:
        return self.world.add_user(username, password, display_name=display_name, email=email,
                                   otp=otp, domain=domain)

    def personal_group(self, user_id: int) -> int:
        return self.world.personal_group(user_id)

    def add_group(self, name: str, members: list[int]) -> int:
        return self.world.add_group(name, members)

    def add_to_group(self, group_id: int, user_id: int) -> None:
        self.world.add_to_group(group_id, user_id)

    def add_folder(self, name: str, path: str | None = None) -> int:
        return self.world.add_folder(name, path)

    def add_secret(self, name: str, *, folder_id: int | None = None, template_name: str = "Password",
                   viewers=(), requires_approval: bool = False, approvers=(),
                   requires_comment: bool = False, requires_ticket: bool = False, launchers=(),
                   fields: dict | None = None) -> int:
        return self.world.add_secret(
            name, folder_id=folder_id, template_name=template_name, viewers=viewers,
            requires_approval=requires_approval, approvers=approvers,
            requires_comment=requires_comment, requires_ticket=requires_ticket,
            launchers=launchers, fields=fields)

    def touch_recent(self, user_id: int, secret_id: int) -> None:
        self.world.touch_recent(user_id, secret_id)

    def secret_field_values(self) -> set[str]:
        return self.world.secret_field_values()

    def issued_tokens(self) -> set[str]:
        return self.world.issued_tokens()

    def create_request(self, secret_id: int, requester_id: int, *, comment: str = "",
                       ticket: str = "", start=None, expiration=None, steps=None) -> int:
        return self.world.create_request(secret_id, requester_id, comment=comment, ticket=ticket,
                                         start=start, expiration=expiration, steps=steps)

    def approve(self, request_id: int, by_user_id: int, comment: str = "", expiration=None) -> None:
        self.world.approve(request_id, by_user_id, comment, expiration=expiration)

    def deny(self, request_id: int, by_user_id: int, comment: str) -> None:
        self.world.deny(request_id, by_user_id, comment)

    def cancel(self, request_id: int) -> None:
        self.world.cancel(request_id)

    def expire(self, request_id: int) -> None:
        self.world.expire(request_id)

    def advance_step(self, request_id: int) -> None:
        self.world.advance_step(request_id)

    def remove(self, request_id: int) -> None:
        self.world.remove(request_id)

    def get_request(self, request_id: int) -> dict:
        return self.world.get_request(request_id)

    def expire_all_tokens(self) -> None:
        self.world.expire_all_tokens()

    def now(self):
        return now()

    # ---------------------------------------------------------------- faults
    def fail(self, path_regex: str, *, status: int = 500, times: int = 1,
             retry_after: float | None = None, html: bool = False,
             hang: threading.Event | None = None, body: Any = None, after: int = 0) -> None:
        """The next `times` requests whose path matches `path_regex` (re.search, relative path,
        no query) misbehave, after letting `after` matching requests through untouched:
        `status` with SS's body for it (or `body`: JSON data, or bytes sent raw as JSON);
        429 adds `Retry-After` when given; `html` answers 200 text/html; `hang` blocks until
        the event is set (at most 30 s), then answers normally."""
        with self._faults_lock:
            self._faults.append(_Fault(re.compile(path_regex), times, status, retry_after, html,
                                       hang, body, after))

    def before_answer(self, path_regex: str, fn: Callable[[Call], None]) -> None:
        """Run `fn(call)` before answering each request whose path matches `path_regex`
        (re.search): lets a test change the world between two page reads of a listing."""
        with self._faults_lock:
            self._hooks.append((re.compile(path_regex), fn))

    def clear_faults(self) -> None:
        """Back to normal: drop every fault still queued (and release any hang)."""
        with self._faults_lock:
            for f in self._faults:
                if f.hang is not None:
                    f.hang.set()
            self._faults.clear()

    def _take_fault(self, path: str) -> _Fault | None:
        with self._faults_lock:
            for f in self._faults:
                if f.times > 0 and f.regex.search(path):
                    if f.after > 0:
                        f.after -= 1
                        return None
                    f.times -= 1
                    return f
        return None

    # ---------------------------------------------------------------- recording
    def _record(self, call: Call) -> Call:
        with self._calls_cond:
            self.calls.append(call)
            self._calls_cond.notify_all()
            return call

    def _set_status(self, call: Call, status: int) -> None:
        with self._calls_cond:
            for i in range(len(self.calls) - 1, -1, -1):   # reset_calls may have dropped it
                if self.calls[i] is call:
                    self.calls[i] = Call(call.method, call.path, call.query, call.user, call.body,
                                         status, call.at, time.monotonic())
                    self._calls_cond.notify_all()
                    return

    def wait_for(self, predicate: Callable[[Call], bool], timeout: float = 5) -> Call:
        """Block until a recorded call satisfies `predicate`; TimeoutError after `timeout`."""
        with self._calls_cond:
            found: list[Call] = []

            def check() -> bool:
                found[:] = [c for c in self.calls if predicate(c)][:1]
                return bool(found)
            if not self._calls_cond.wait_for(check, timeout=timeout):
                raise TimeoutError("no matching call to the Secret Server stand-in")
            return found[0]

    def reset_calls(self) -> None:
        with self._calls_cond:
            self.calls.clear()

    def calls_to(self, path_regex: str, method: str | None = None) -> list[Call]:
        rx = re.compile(path_regex)
        with self._calls_cond:
            return [c for c in self.calls if rx.search(c.path) and (method is None
                                                                    or c.method == method)]


class _Handler(LoopbackHandler):
    standin: SecretServerStandIn
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle plus delayed ACKs
        # add ~40 ms to every keep-alive call
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet; never log queries
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    # ---------------------------------------------------------------- plumbing
    def _handle(self) -> None:
        ss = self.standin
        self._call = None
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        raw = self._read_body()
        path = parts.path
        if not path.lower().startswith(PREFIX.lower()):
            if ss.platform and path in _PLATFORM_PATHS:
                self._platform(path, raw)
                return
            self._send(404, _NOT_FOUND)
            return
        path = path[len(PREFIX):] or "/"

        form: dict[str, str] = {}
        body: Any = None
        ctype = self.headers.get("Content-Type", "")
        if "x-www-form-urlencoded" in ctype:
            form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            body = {k: ("***" if k in _REDACTED_FORM_FIELDS else v) for k, v in form.items()}
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")

        token = self._bearer()
        user = ss.world.user_for_token(token) if token else None
        self._call = ss._record(Call(self.command, path, query,
                                     user.username if user else None, body, at=time.monotonic()))

        with ss._faults_lock:
            hooks = [fn for rx, fn in ss._hooks if rx.search(path)]
        for fn in hooks:
            fn(self._call)
        fault = ss._take_fault(path)
        if fault is not None and fault.hang is not None:
            fault.hang.wait(HANG_LIMIT_SECONDS)
            fault = None                        # then answer normally
        if fault is not None:
            self._send_fault(fault)
        else:
            status, payload, headers = self._dispatch(path, query, form, body, token, user)
            self._send(status, payload, headers)

    def _platform(self, path: str, raw: bytes) -> None:
        """The Delinea Platform tenant: what python-tss-sdk and the relay use of it."""
        ss = self.standin
        form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        token = self._bearer()
        user = ss.world.user_for_token(token) if token else None
        body = {k: ("***" if k == "client_secret" else v) for k, v in form.items()} or None
        self._call = ss._record(Call(self.command, path, {}, user.username if user else None, body))
        fault = ss._take_fault(path)
        if fault is not None and fault.hang is None:
            self._send_fault(fault)
            return
        try:
            if path == "/health" and self.command == "GET":
                # the platform's body is not published; Delinea's python-tss-sdk reads `Healthy`
                self._send(200, {"Healthy": True})
            elif path == PLATFORM_TOKEN_PATH and self.command == "POST":
                self._send(200, ss.world.platform_token(form))
            elif path == VAULTS_PATH and self.command == "GET":
                if user is None:
                    self._send(401, {"message": "Unauthorized"})
                else:
                    self._send(200, {"vaults": [
                        {"vaultId": "0b6c9a52-0000-4000-8000-000000000001", "name": "Old vault",
                         "type": "SecretServer", "isDefault": False, "isActive": False,
                         "connection": {"url": "https://old-vault.invalid/SecretServer",
                                        "oAuthProfileId": "p0"}},
                        {"vaultId": "0b6c9a52-0000-4000-8000-000000000002", "name": "Secret Server",
                         "type": "SecretServer", "isDefault": True, "isActive": True,
                         "connection": {"url": ss.base_url, "oAuthProfileId": "p1"}}]})
            else:
                self._send(405, {"message": "Method not allowed."})
        except ApiError as e:
            self._send(e.status, e.body, e.headers)

    def _bearer(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip() or None
        return None

    def _dispatch(self, path, query, form, body, token, user) -> tuple[int, Any, dict]:
        ss = self.standin
        path_match = False
        for method, rx, name, needs_auth in _ROUTES:
            m = rx.match(path)
            if not m:
                continue
            path_match = True
            if method != self.command:
                continue
            if needs_auth and user is None:
                if ss.auth_failure_status == 403:
                    return 403, {"message": "Authentication failed"}, {}
                return 401, {"message": "Authorization has been denied for this request."}, {}
            try:
                if name == "token":
                    return 200, ss.world.api_token(form, self.headers.get("OTP")), {}
                if name == "healthcheck":
                    return 200, {"healthy": True, "Healthy": True, "databaseHealthy": True,
                                 "serviceBusHealthy": True, "storageAccountHealthy": True,
                                 "scheduledForDeletion": False, "readOnlyMode": False}, {}
                if name == "version":
                    return 200, {"success": True, "model": {"version": "11.7.000001"}}, {}
                if name == "revoke":
                    ss.world.revoke(token)
                    return 200, True, {}
                return 200, getattr(ss.world, name)(user, query, body, **m.groupdict()), {}
            except ApiError as e:
                return e.status, e.body, e.headers
            except Exception:               # a stand-in bug: answer like SS's 500
                log.exception("stand-in handler %s failed", name)
                return 500, _server_error("An error has occurred."), {}
        if path_match:
            return 405, {"message": f"The requested resource does not support http method "
                                    f"'{self.command}'."}, {}
        return 404, _NOT_FOUND, {}

    def _send_fault(self, f: _Fault) -> None:
        if f.html:
            self._send_raw(200, b"<html><head><title>Error</title></head><body><h1>Server Error"
                                b"</h1><p>An error occurred.</p></body></html>",
                           "text/html; charset=utf-8")
            return
        headers = {}
        if f.status == 429 and f.retry_after is not None:
            headers["Retry-After"] = f"{f.retry_after:g}"
        if isinstance(f.body, bytes):             # raw bytes, sent as if JSON
            self._send_raw(f.status, f.body, "application/json; charset=utf-8", headers)
            return
        if f.body is not None:
            payload = f.body
        elif f.status == 429:
            payload = {"message": "Too many requests."}
        elif f.status >= 500:
            payload = _server_error("Injected fault.")
        elif f.status == 400:
            payload = ACCESS_DENIED
        else:
            payload = {"message": "Injected fault."}
        self._send(f.status, payload, headers)

    def _send(self, status: int, payload: Any, headers: dict | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self._send_raw(status, data, "application/json; charset=utf-8", headers)

    def _send_raw(self, status: int, data: bytes, ctype: str, headers: dict | None = None) -> None:
        if self._call is not None:        # before the client can see the answer
            self.standin._set_status(self._call, status)
        self._write_answer(status, data, ctype, headers)


def _server_error(message: str) -> dict:
    return {"message": "An error has occurred.", "exceptionMessage": message,
            "exceptionType": "System.Exception", "stackTrace": "   at SecretServer.Api (stand-in)"}
