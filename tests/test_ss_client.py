"""The Secret Server client against the stand-in, over real HTTP.

Cast: alice requests secrets; bob and carol review (DBA group, Security group); mallory sees
nothing of theirs; svc-relay is the relay's read account, a member of the DBA group.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from relay.errors import (AccessDenied, AuthenticationFailed, RequestRejected,
                          SecretServerBadResponse, SecretServerUnavailable, SessionExpired)
from relay.model import APPROVED, CANCELED, DENIED, PENDING
from relay.sandbox.secret_server import SecretServerStandIn
from relay.ss.client import RelayCredentials, SecretServerClient, TokenSet
from relay.ss.parse import format_timestamp, parse_timestamp

REQUESTS = "/api/v1/secret-access-requests"
PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "carol": "carol-pw-3",
             "mallory": "mallory-pw-4", "svc-relay": "relay-pw-5"}
UTC = timezone.utc


class FakeTime:
    """Records retry waits instead of sleeping; the retry budget's clock moves by them."""

    def __init__(self):
        self.waits: list[float] = []
        self._offset = 0.0

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self._offset += seconds

    def clock(self) -> float:
        return time.monotonic() + self._offset


class World:
    def __init__(self, ss: SecretServerStandIn):
        self.ss = ss
        self.alice = ss.add_user("alice", PASSWORDS["alice"], display_name="Alice Archer")
        self.bob = ss.add_user("bob", PASSWORDS["bob"], display_name="Bob Baker",
                               email="bob@corp.example")
        self.carol = ss.add_user("carol", PASSWORDS["carol"], display_name="Carol Cook")
        self.mallory = ss.add_user("mallory", PASSWORDS["mallory"])
        self.relay = ss.add_user("svc-relay", PASSWORDS["svc-relay"])
        self.dba = ss.add_group("DBA", [self.bob, self.relay])
        self.security = ss.add_group("Security", [self.carol])
        self.prod = ss.add_folder("Production", "\\Production")
        self.db_secret = ss.add_secret(
            "prod-db admin", folder_id=self.prod, viewers=[self.alice, self.dba, self.security],
            requires_approval=True, approvers=[self.dba], fields={"password": "hunter2-SECRET"},
            launchers=[{"launcherId": 7, "launcherName": "SQL Server", "promptedField": False,
                        "restrictedHosts": []}])
        self.wiki = ss.add_secret("wiki admin", viewers=[self.alice, self.bob],
                                  fields={"password": "wiki-SECRET-pw"})


@pytest.fixture
def ss():
    with SecretServerStandIn() as standin:
        yield standin


@pytest.fixture
def w(ss):
    return World(ss)


@pytest.fixture
def fake():
    return FakeTime()


@pytest.fixture
def make_client(ss, fake):
    clients = []

    def make(user="svc-relay", **kw):
        kw.setdefault("retry_seconds", 5.0)
        kw.setdefault("timeout", 5.0)
        creds = RelayCredentials(user, PASSWORDS[user]) if user else None
        c = SecretServerClient(ss.base_url, credentials=creds, sleep=fake.sleep,
                               clock=fake.clock, **kw)
        clients.append(c)
        return c
    yield make
    for c in clients:
        c.close()


@pytest.fixture
def client(make_client):
    return make_client()


def as_user(client, name):
    return client.as_user(client.login_user(name, PASSWORDS[name]))


def token_calls(ss):
    return ss.calls_to(r"^/oauth2/token$", "POST")


# ---------------------------------------------------------------------- tokens
def test_one_token_serves_many_calls(ss, w, client):
    ss.create_request(w.db_secret, w.alice, comment="deploy")
    for _ in range(3):
        client.list_pending()
    client.current_user()
    client.get_user(w.bob)

    assert len(token_calls(ss)) == 1
    assert {c.user for c in ss.calls if c.path != "/oauth2/token"} == {"svc-relay"}


def test_token_renewed_60s_before_expiry_without_a_401(ss, w, client):
    with freeze_time("2024-05-01 10:00:00") as frozen:
        client.current_user()
        frozen.tick(timedelta(seconds=1200 - 61))      # 61 s left: still good
        client.current_user()
        assert len(token_calls(ss)) == 1

        frozen.tick(timedelta(seconds=2))              # 59 s left: renew first
        me = client.current_user()

    assert me.username == "svc-relay"
    grants = [c.body["grant_type"] for c in token_calls(ss)]
    assert grants == ["password", "refresh_token"]
    assert [c.status for c in ss.calls if c.path == "/api/v1/users/current"] == [200, 200, 200]


def test_refused_refresh_token_falls_back_to_password(ss, w, client):
    with freeze_time("2024-05-01 10:00:00") as frozen:
        client.current_user()
        ss.world.refresh_tokens.clear()                # SS forgot every refresh token
        frozen.tick(timedelta(seconds=1150))
        client.current_user()

    assert [c.body["grant_type"] for c in token_calls(ss)] == ["password", "refresh_token",
                                                               "password"]


@pytest.mark.parametrize("failure_status", [401, 403])
def test_refused_token_means_one_login_and_one_retry(ss, w, client, failure_status):
    ss.auth_failure_status = failure_status
    client.current_user()
    ss.expire_all_tokens()
    ss.reset_calls()

    me = client.current_user()

    assert me.username == "svc-relay"
    assert [(c.method, c.path, c.status) for c in ss.calls] == [
        ("GET", "/api/v1/users/current", failure_status),
        ("POST", "/oauth2/token", 200),
        ("GET", "/api/v1/users/current", 200),
    ]
    assert ss.calls[1].body["grant_type"] == "password"


def test_token_refused_twice_is_authentication_failed(ss, w, client):
    client.current_user()
    ss.reset_calls()
    ss.fail(r"^/api/v1/users/current$", status=401, times=2)

    with pytest.raises(AuthenticationFailed):
        client.current_user()
    assert len(ss.calls_to("/api/v1/users/current")) == 2   # one retry, no loop


def test_wrong_relay_password_is_authentication_failed(ss, w, make_client):
    c = SecretServerClient(ss.base_url, credentials=RelayCredentials("svc-relay", "nope"))
    try:
        with pytest.raises(AuthenticationFailed) as err:
            c.list_pending()
        assert err.value.otp_required is False
    finally:
        c.close()


def test_domain_is_sent_with_the_password_grant(ss, make_client):
    ss.add_user("svc-ad", "ad-pw", domain="CORP")
    c = SecretServerClient(ss.base_url, credentials=RelayCredentials("svc-ad", "ad-pw", "CORP"))
    try:
        assert c.current_user().username == "svc-ad"
    finally:
        c.close()
    assert token_calls(ss)[0].body["domain"] == "CORP"


# ---------------------------------------------------------------------- listing
def test_listing_walks_all_pages_in_a_stable_order(ss, w, make_client):
    ids = [ss.create_request(w.db_secret, w.alice, comment=f"r{i}") for i in range(9)]
    client = make_client(page_size=4)

    pending = client.list_pending()

    assert [r.id for r in pending] == ids
    # sorted by the request id, ascending, as Delinea's PowerShell module sends sortBy;
    # each page starts one record early, so a shifted listing shows up
    pages = [(c.query["skip"], c.query["take"], c.query["filter.status"],
              c.query["sortBy[0].name"], c.query["sortBy[0].direction"])
             for c in ss.calls_to(f"^{REQUESTS}$")]
    assert pages == [(skip, "4", "Pending", "secretAccessRequestId", "asc")
                     for skip in ("0", "3", "6")]


def test_a_server_that_gives_fewer_records_than_asked_is_read_to_the_end(ss, w, make_client):
    # Secret Server caps a page at 3 records; the client asks for 4 at a time.
    ids = [ss.create_request(w.db_secret, w.alice, comment=f"r{i}") for i in range(9)]
    ss.world.max_take = 3
    client = make_client(page_size=4)
    # A short page is not the last one while the total says more are there.
    assert [r.id for r in client.list_pending()] == ids


@pytest.mark.parametrize(("records", "total", "cap"), [(2000, 2000, 25), (120, 121, 1000)])
def test_a_listing_is_read_in_a_bounded_number_of_calls_whatever_the_server_says(records, total, cap):
    # A server (a fake here: the stand-in's totals are always right) that caps its pages, or
    # whose total counts one record it never returns.
    from relay.ss.paging import read_all
    rows = [{"id": i} for i in range(1, records + 1)]
    calls = []

    def get(q: dict) -> dict:
        calls.append(q)
        skip, take = int(q["skip"]), min(int(q["take"]), cap)
        return {"records": rows[skip:skip + take], "total": total}
    found, _ = read_all(get, "/x", key="id", size=500)
    # Every record, each page read about once (a page starts a little early).
    assert [r["id"] for r in found] == list(range(1, records + 1))
    assert len(calls) <= 2 * -(-records // min(cap, 500)) + 1, len(calls)


@pytest.mark.parametrize("per_read", [1, 4])
def test_paging_under_churn_misses_nothing_and_abandons_nothing(ss, w, make_client, per_read):
    """Requests are added and decided between every two page reads of a long listing (4 per
    read is more than a page's overlap: the overlap has to grow)."""
    ids = [ss.create_request(w.db_secret, w.alice, comment=f"r{i}") for i in range(40)]
    client = make_client(page_size=6)
    added: list[int] = []
    decided: list[int] = []

    def churn(call):
        if call.method == "GET" and call.query.get("skip", "0") != "0" and len(decided) < 12:
            for _ in range(per_read):
                # an earlier request is decided (the listing shifts left), a new one arrives
                ss.cancel(ids[len(decided) * 2])
                decided.append(ids[len(decided) * 2])
                added.append(ss.create_request(w.db_secret, w.alice, comment="late"))
    ss.before_answer(f"^{REQUESTS}$", churn)

    pending = client.list_pending()

    seen = {r.id for r in pending}
    assert len(decided) >= 5                              # the churn really happened
    assert set(ids) - set(decided) <= seen                 # no request that stayed pending is missed
    assert seen <= set(ids) | set(added)


def test_failure_on_page_two_of_three_returns_nothing(ss, w, make_client, fake):
    for _ in range(5):
        ss.create_request(w.db_secret, w.alice)
    client = make_client(page_size=2, retry_seconds=3.0)
    ss.fail(f"^{REQUESTS}$", status=500, times=1000, after=1)

    with pytest.raises(SecretServerUnavailable):
        client.list_pending()

    skips = {c.query["skip"] for c in ss.calls_to(f"^{REQUESTS}$")}
    assert skips == {"0", "1"}                       # page 3 never asked for
    assert 0 < sum(fake.waits) <= 3.0


def test_listing_that_ignores_the_sort_and_shrinks_while_paging_is_rejected(ss, w, make_client):
    ss.honour_sort = False                 # a server that ignores sortBy: strict rules apply
    ids = [ss.create_request(w.db_secret, w.alice) for _ in range(5)]
    client = make_client(page_size=2)
    page2 = threading.Event()
    ss.fail(f"^{REQUESTS}$", hang=page2, after=1)
    outcome: dict = {}

    def poll():
        try:
            outcome["value"] = client.list_pending()
        except Exception as e:             # noqa: BLE001 - handed to the test thread
            outcome["error"] = e
    worker = threading.Thread(target=poll)
    worker.start()
    ss.wait_for(lambda c: c.path == REQUESTS and c.query.get("skip") == "2")
    ss.cancel(ids[-1])                     # newest first: page 2 now starts one record later
    page2.set()
    worker.join(10)

    assert "value" not in outcome
    assert isinstance(outcome["error"], SecretServerBadResponse)
    assert "inconsistent listing" in str(outcome["error"])


def test_duplicate_records_across_pages_are_rejected(ss, w, make_client):
    ss.create_request(w.db_secret, w.alice)
    record = ss.get_request(1)
    page = {"records": [record], "total": 2, "hasNext": True, "skip": 0, "take": 1}
    ss.fail(f"^{REQUESTS}$", status=200, body=page, times=2)
    client = make_client(page_size=1)

    with pytest.raises(SecretServerBadResponse, match="inconsistent listing"):
        client.list_pending()


def test_list_requests_by_status_for_catch_up(ss, w, client):
    a = ss.create_request(w.db_secret, w.alice)
    b = ss.create_request(w.db_secret, w.alice)
    ss.approve(a, w.bob, "ok")
    ss.deny(b, w.bob, "no")

    assert [r.id for r in client.list_requests(APPROVED)] == [a]
    assert [r.id for r in client.list_requests(DENIED)] == [b]
    assert client.list_pending() == []


# ---------------------------------------------------------------------- retries and faults
def test_500_then_success_is_retried_after_a_backoff(ss, w, client, fake):
    client.current_user()
    ss.fail(r"^/api/v1/users/current$", status=500)

    assert client.current_user().username == "svc-relay"
    assert len(fake.waits) == 1 and 0.5 <= fake.waits[0] <= 1.0
    assert [c.status for c in ss.calls_to("/api/v1/users/current")] == [200, 500, 200]


def test_429_retry_after_is_honoured(ss, w, client, fake):
    client.current_user()
    ss.fail(r"^/api/v1/users/current$", status=429, retry_after=2)

    client.current_user()

    assert fake.waits == [2.0]


def test_retry_after_is_capped_by_the_remaining_budget(ss, w, make_client, fake):
    client = make_client(retry_seconds=5.0)
    client.current_user()
    ss.fail(r"^/api/v1/users/current$", status=429, retry_after=120, times=10)

    with pytest.raises(SecretServerUnavailable):
        client.current_user()
    assert len(fake.waits) == 1 and 4.0 < fake.waits[0] <= 5.0


def test_retry_budget_is_bounded(ss, w, make_client, fake):
    client = make_client(retry_seconds=10.0)
    client.current_user()
    ss.fail(r"^/api/v1/users/current$", status=503, times=1000)

    with pytest.raises(SecretServerUnavailable) as err:
        client.current_user()

    assert err.value.status == 503
    assert sum(fake.waits) <= 10.0
    assert fake.waits[:3] == sorted(fake.waits[:3])        # exponential growth
    assert 3 <= len(fake.waits) < 10


def test_hanging_server_times_out_and_is_retried(ss, w, make_client, fake):
    client = make_client(timeout=0.3)
    client.current_user()
    released = threading.Event()
    ss.fail(r"^/api/v1/users/current$", hang=released)
    try:
        assert client.current_user().username == "svc-relay"
    finally:
        released.set()
    assert len(fake.waits) == 1
    assert len(ss.calls_to("/api/v1/users/current")) == 3


def test_unreachable_server_is_unavailable(fake):
    with SecretServerStandIn() as gone:
        url = gone.base_url
    c = SecretServerClient(url, credentials=RelayCredentials("x", "y"), retry_seconds=2.0,
                           sleep=fake.sleep, clock=fake.clock)
    with pytest.raises(SecretServerUnavailable):
        c.current_user()
    assert fake.waits


def test_html_on_200_is_a_bad_response(ss, w, client):
    ss.fail(r"^/api/v1/users/current$", html=True)
    with pytest.raises(SecretServerBadResponse, match="instead of JSON"):
        client.current_user()


def test_malformed_json_is_a_bad_response(ss, w, client):
    ss.fail(r"^/api/v1/users/current$", status=200, body=b'{"id": 3, "userN')
    with pytest.raises(SecretServerBadResponse, match="malformed JSON"):
        client.current_user()


def test_record_without_id_or_status_is_a_bad_response(ss, w, client):
    ss.create_request(w.db_secret, w.alice)
    broken = ss.get_request(1)
    del broken["secretAccessRequestId"]
    ss.fail(rf"^{REQUESTS}/1$", status=200, body=broken)
    with pytest.raises(SecretServerBadResponse, match="secretAccessRequestId"):
        client.get_request(1)

    no_status = ss.get_request(1)
    del no_status["status"]
    ss.fail(rf"^{REQUESTS}/1$", status=200, body=no_status)
    with pytest.raises(SecretServerBadResponse, match="status"):
        client.get_request(1)


def test_writes_are_not_repeated_after_a_5xx(ss, w, client):
    rid = ss.create_request(w.db_secret, w.alice)
    bob = as_user(client, "bob")
    ss.fail(f"^{REQUESTS}$", status=500)

    with pytest.raises(SecretServerUnavailable):
        bob.deny(rid, "not today")
    assert len(ss.calls_to(f"^{REQUESTS}$", "PUT")) == 1


def test_write_retried_after_429(ss, w, client, fake):
    rid = ss.create_request(w.db_secret, w.alice)
    bob = as_user(client, "bob")
    ss.fail(f"^{REQUESTS}$", status=429, retry_after=1)

    assert bob.deny(rid, "not today").status == DENIED
    assert fake.waits == [1.0]


# ---------------------------------------------------------------------- typed errors
def test_unreadable_request_is_access_denied(ss, w, client):
    theirs = ss.create_request(w.wiki, w.alice)     # wiki has no approvers: relay cannot see it
    mine = ss.create_request(w.db_secret, w.alice)
    assert client.get_request(mine).id == mine
    ss.remove(mine)

    for rid in (theirs, mine, 999):
        with pytest.raises(AccessDenied) as err:
            client.get_request(rid)
        assert err.value.status == 400
        assert err.value.path == f"{REQUESTS}/{rid}"


# ---------------------------------------------------------------------- people's sessions
def test_otp_required_wrong_and_right(ss, client):
    ss.add_user("dave", "dave-pw", otp="123456")

    with pytest.raises(AuthenticationFailed) as missing:
        client.login_user("dave", "dave-pw")
    with pytest.raises(AuthenticationFailed) as wrong:
        client.login_user("dave", "dave-pw", otp="654321")
    with pytest.raises(AuthenticationFailed) as bad_password:
        client.login_user("dave", "nope", otp="123456")
    tokens = client.login_user("dave", "dave-pw", otp="123456")

    assert missing.value.otp_required and wrong.value.otp_required
    assert not bad_password.value.otp_required
    assert not isinstance(missing.value, SessionExpired)
    assert client.as_user(tokens).current_user().username == "dave"


def test_refresh_token_is_single_use(ss, w, client):
    tokens = client.login_user("alice", PASSWORDS["alice"])
    fresh = client.refresh_user(tokens.refresh_token)
    assert client.as_user(fresh).current_user().username == "alice"

    with pytest.raises(SessionExpired):
        client.refresh_user(tokens.refresh_token)


def test_user_call_with_dead_token_raises_session_expired(ss, w, client):
    alice = as_user(client, "alice")
    ss.expire_all_tokens()
    with pytest.raises(SessionExpired):
        alice.current_user()
    assert len(token_calls(ss)) == 1                 # the user's own login only


def test_user_session_refreshed_through_callback(ss, w, client):
    stored: list[TokenSet] = []
    alice = client.as_user(client.login_user("alice", PASSWORDS["alice"]), on_refresh=stored.append)
    ss.expire_all_tokens()

    assert alice.current_user().username == "alice"
    assert len(stored) == 1 and alice.tokens is stored[0]
    assert [c.body["grant_type"] for c in token_calls(ss)] == ["password", "refresh_token"]


def test_revoked_token_no_longer_works(ss, w, client):
    tokens = client.login_user("alice", PASSWORDS["alice"])
    client.revoke(tokens.access_token)
    with pytest.raises(SessionExpired):
        client.as_user(tokens).current_user()


def test_token_set_repr_hides_tokens(client, w):
    tokens = client.login_user("alice", PASSWORDS["alice"])
    assert tokens.access_token not in repr(tokens)
    assert tokens.refresh_token not in repr(tokens)
    assert PASSWORDS["svc-relay"] not in repr(RelayCredentials("svc-relay", PASSWORDS["svc-relay"]))


# ---------------------------------------------------------------------- visibility
def test_requests_are_seen_by_requester_and_reviewers_only(ss, w, client):
    rid = ss.create_request(w.db_secret, w.alice, comment="deploy")
    alice, bob = as_user(client, "alice"), as_user(client, "bob")
    carol, mallory = as_user(client, "carol"), as_user(client, "mallory")

    assert [r.id for r in alice.list_pending()] == [rid]
    assert [r.id for r in bob.list_pending()] == [rid]
    assert [r.id for r in client.list_pending()] == [rid]
    assert carol.list_pending() == []                # Security does not review prod-db
    assert mallory.list_pending() == []
    with pytest.raises(AccessDenied):
        mallory.get_request(rid)


def test_secrets_are_seen_by_viewers_only(ss, w, make_client):
    client = make_client(user=None)
    alice, mallory = as_user(client, "alice"), as_user(client, "mallory")

    assert [s.name for s in alice.search_secrets("ADMIN")] == ["prod-db admin", "wiki admin"]
    assert mallory.search_secrets("admin") == []
    with pytest.raises(AccessDenied):
        mallory.secret_summary(w.db_secret)

    found = alice.search_secrets("prod")[0]
    assert (found.id, found.folder_id, found.folder_path, found.template_name) == \
        (w.db_secret, w.prod, "\\Production", "Password")
    assert found.requires_approval and found.has_launcher
    calls = ss.calls_to("/api/v1/secrets$")
    assert calls[0].query["filter.includeRestricted"] == "true"
    assert calls[0].query["take"] == "3"


def test_recent_secrets_are_the_users_own(ss, w, client):
    ss.touch_recent(w.alice, w.wiki)
    ss.touch_recent(w.alice, w.db_secret)
    ss.touch_recent(w.bob, w.wiki)

    assert [s.id for s in as_user(client, "alice").recent_secrets()] == [w.db_secret, w.wiki]
    assert [s.id for s in as_user(client, "bob").recent_secrets()] == [w.wiki]


@pytest.mark.parametrize("missing", [404, 405])
def test_search_falls_back_to_v2_when_v1_is_absent(ss, w, client, missing):
    ss.v1_secrets_enabled = False
    ss.world.v1_secrets_missing = missing      # 405: a server with only POST /v1/secrets
    alice = as_user(client, "alice")

    assert [s.id for s in alice.search_secrets("wiki")] == [w.wiki]
    assert [s.id for s in alice.search_secrets("prod")] == [w.db_secret]

    searches = [(c.path, c.status) for c in ss.calls if "/secrets" in c.path]
    assert searches == [("/api/v1/secrets", missing), ("/api/v2/secrets", 200),
                        ("/api/v2/secrets", 200)]       # v1 not asked again


def test_restricted_hosts_are_read_as_their_values(ss, w, client):
    # LauncherDetailsV2.restrictedHosts is a list of ICategorizedListItemValue objects
    box = ss.add_secret("jump box", viewers=[w.alice], launchers=[
        {"launcherId": 9, "launcherName": "SSH", "promptedField": True,
         "restrictedHosts": [{"category": "Servers", "value": "srv01.corp"},
                             {"category": "Lab", "value": "lab02.corp"}]}])
    alice = as_user(client, "alice")

    [launcher] = alice.launchers(box)

    assert launcher.restricted_hosts == ("srv01.corp", "lab02.corp")
    alice.launch(box, 9, launcher.restricted_hosts[0])
    [call] = ss.calls_to(r"/api/v1/launchers/secret\Z", "POST")
    assert call.body["promptFieldValue"] == "srv01.corp"


# ---------------------------------------------------------------------- writes (PUT rules)
def test_reviewer_approves_with_a_window(ss, w, client):
    rid = ss.create_request(w.db_secret, w.alice, comment="deploy")
    bob = as_user(client, "bob")
    start = datetime(2030, 1, 2, 9, 0, tzinfo=UTC)
    end = start + timedelta(hours=8)

    result = bob.approve(rid, start, end, "go ahead")

    assert (result.status, result.decided_by, result.response_comment) == \
        (APPROVED, "Bob Baker", "go ahead")
    assert (result.start, result.expiration) == (start, end)
    put = ss.calls_to(f"^{REQUESTS}$", "PUT")[0]
    assert put.user == "bob"
    assert put.body == {"secretAccessRequestId": rid, "status": "Approved",
                        "startDate": "2030-01-02T09:00:00.000",
                        "expirationDate": "2030-01-02T17:00:00.000",
                        "responseComment": "go ahead"}


def test_requester_cannot_approve_own_request(ss, w, client):
    ss.add_to_group(w.dba, w.alice)                 # even as a member of the approver group
    rid = ss.create_request(w.db_secret, w.alice)
    alice = as_user(client, "alice")
    with pytest.raises(RequestRejected, match="cannot review") as err:
        alice.approve(rid, datetime.now(UTC), datetime.now(UTC) + timedelta(hours=1))
    assert err.value.status == 400
    assert ss.get_request(rid)["status"] == PENDING


def test_decided_request_is_no_longer_pending(ss, w, client):
    rid = ss.create_request(w.db_secret, w.alice)
    ss.approve(rid, w.bob, "already")
    with pytest.raises(RequestRejected) as err:
        as_user(client, "bob").deny(rid, "too late")
    assert err.value.error_code == "API_RequestNotPending"


def test_deny_needs_a_comment(ss, w, client):
    rid = ss.create_request(w.db_secret, w.alice)
    with pytest.raises(RequestRejected) as err:
        as_user(client, "bob").deny(rid, "")
    assert "args.ResponseComment" in err.value.model_state
    assert ss.get_request(rid)["status"] == PENDING


@freeze_time("2026-12-02 03:00:00")
def test_deny_and_cancel_send_a_start_date_as_the_powershell_module_does(ss, w, client):
    denied = ss.create_request(w.db_secret, w.alice)
    canceled = ss.create_request(w.db_secret, w.alice)
    as_user(client, "bob").deny(denied, "not now")
    as_user(client, "alice").cancel(canceled)
    puts = [c.body for c in ss.calls_to(f"^{REQUESTS}$", "PUT")]
    assert puts == [
        {"secretAccessRequestId": denied, "status": DENIED, "startDate": "2026-12-02T03:00:00.000",
         "responseComment": "not now"},
        {"secretAccessRequestId": canceled, "status": CANCELED, "startDate": "2026-12-02T03:00:00.000"}]


def test_search_text_matches_field_values_and_list_contents_but_returns_no_values(ss, w, client):
    box = ss.add_secret("jump box", viewers=[w.alice],
                        fields={"machine": "bastion-7.corp", "hosts": ["db-a.corp", "db-b.corp"]})
    alice = as_user(client, "alice")

    assert [s.id for s in alice.search_secrets("bastion-7")] == [box]      # a field value
    assert [s.id for s in alice.search_secrets("db-b.corp")] == [box]      # list contents
    assert alice.search_secrets("no-such-text") == []
    found = alice.search_secrets("bastion")
    assert "bastion-7" not in repr(found)


def test_only_the_requester_cancels(ss, w, client):
    rid = ss.create_request(w.db_secret, w.alice)
    with pytest.raises(AccessDenied):
        as_user(client, "bob").cancel(rid)
    assert as_user(client, "alice").cancel(rid).status == CANCELED


def test_workflow_step_approval_moves_to_the_next_step(ss, w, client):
    rid = ss.create_request(w.db_secret, w.alice, steps=[[w.dba], [w.security, w.carol]])
    assert client.step_reviewers(rid)[0].group_id == w.dba

    after = as_user(client, "bob").approve(rid, datetime.now(UTC),
                                           datetime.now(UTC) + timedelta(hours=1))

    assert (after.status, after.review_status, after.has_workflow) == (PENDING, "Step 2 of 2", True)
    reviewers = client.step_reviewers(rid)
    assert [(r.display_name, r.group_id, r.is_user) for r in reviewers] == [
        ("Security", w.security, False), ("Carol Cook", ss.personal_group(w.carol), True)]
    with pytest.raises(RequestRejected, match="cannot review"):
        as_user(client, "bob").deny(rid, "again")


def test_create_request_follows_the_secret_rules(ss, w, client):
    strict = ss.add_secret("hsm", viewers=[w.alice], requires_approval=True, approvers=[w.dba],
                           requires_ticket=True)
    alice = as_user(client, "alice")
    with pytest.raises(RequestRejected) as err:
        alice.create_request(strict, "need it")
    assert "args.TicketNumber" in err.value.model_state

    made = alice.create_request(strict, "need it", "CHG-42")
    assert (made.status, made.ticket, made.requester_username) == (PENDING, "CHG-42", "alice")
    with pytest.raises(AccessDenied):
        as_user(client, "mallory").create_request(strict, "me too", "CHG-1")


# ---------------------------------------------------------------------- reads
def test_people_groups_and_folders(ss, w, make_client):
    ss.add_to_group(w.dba, w.carol)
    client = make_client(page_size=2)

    assert [p.username for p in client.group_members(w.dba)] == ["bob", "carol", "svc-relay"]
    assert len(ss.calls_to(rf"^/api/v1/groups/{w.dba}/users$")) == 2
    bob = client.get_user(w.bob)
    assert (bob.username, bob.name, bob.email) == ("bob", "Bob Baker", "bob@corp.example")
    assert client.folder_name(w.prod) == "Production"
    assert client.healthcheck() is True


def test_launchers_and_launch_after_approval(ss, w, client):
    alice = as_user(client, "alice")
    assert [(x.launcher_id, x.name, x.prompted) for x in alice.launchers(w.db_secret)] == \
        [(7, "SQL Server", False)]
    with pytest.raises(RequestRejected):                       # approval needed first
        alice.launch(w.db_secret, 7)

    rid = ss.create_request(w.db_secret, w.alice)
    ss.approve(rid, w.bob, "ok")
    launched = alice.launch(w.db_secret, 7)
    assert launched["ssUrl"].startswith(f"guid={launched['guid']}&")
    assert launched["baseUrl"] == "sslauncher:///"


# ---------------------------------------------------------------------- time
def test_timestamps_are_aware_utc(ss, w, client):
    with freeze_time("2024-05-01 10:00:00.123"):
        rid = ss.create_request(w.db_secret, w.alice)
        ss.approve(rid, w.bob, "ok", expiration=datetime(2024, 5, 1, 18, tzinfo=UTC))
    r = client.get_request(rid)
    assert ss.get_request(rid)["requestDate"] == "2024-05-01T10:00:00.123"
    assert r.requested_at == datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert r.decided_at.tzinfo is not None and r.decided_at.utcoffset() == timedelta(0)
    assert r.expiration == datetime(2024, 5, 1, 18, tzinfo=UTC)


def test_offsetless_timestamps_are_read_in_the_configured_zone(ss, w, make_client):
    berlin = ZoneInfo("Europe/Berlin")
    with freeze_time("2024-05-01 10:00:00"):
        rid = ss.create_request(w.db_secret, w.alice)
    r = make_client(tz=berlin).get_request(rid)
    assert r.requested_at == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)   # 10:00 CEST
    assert r.requested_at.tzinfo == UTC


@pytest.mark.parametrize("text, expected", [
    ("2024-05-01T10:00:00.123", datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)),
    ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("2021-03-12T10:24:35.5733333", datetime(2021, 3, 12, 10, 24, 35, 573333, tzinfo=UTC)),
    ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("0001-01-01T00:00:00", None),
    (None, None),
])
def test_parse_timestamp(text, expected):
    assert parse_timestamp(text) == expected


def test_parse_timestamp_rejects_garbage():
    with pytest.raises(SecretServerBadResponse):
        parse_timestamp("yesterday-ish")


def test_format_timestamp_is_offsetless_utc():
    assert format_timestamp(datetime(2024, 5, 1, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))) == \
        "2024-05-01T10:00:00.000"
    with pytest.raises(ValueError):
        format_timestamp(datetime(2024, 5, 1, 12, 0))


# ---------------------------------------------------------------------- leaks
def test_no_password_token_or_secret_value_in_logs_or_errors(ss, w, make_client, caplog):
    caplog.set_level(logging.DEBUG)
    ss.add_user("dave", "dave-otp-pw", otp="246810")
    client = make_client(retry_seconds=2.0)
    errors: list[Exception] = []
    rid = ss.create_request(w.db_secret, w.alice)

    client.list_pending()
    ss.expire_all_tokens()
    client.get_request(rid)                                        # 401 -> re-login
    ss.fail(r"^/api/v1/users/current$", status=500, times=1000)
    ss.fail(r"^/api/v1/folders/", status=429, retry_after=1)
    client.folder_name(w.prod)
    alice = client.login_user("alice", PASSWORDS["alice"])
    client.refresh_user(alice.refresh_token)
    for action in (client.current_user,
                   lambda: client.login_user("dave", "dave-otp-pw", otp="000000"),
                   lambda: client.login_user("bob", "bob-wrong-pw"),
                   lambda: client.refresh_user(alice.refresh_token),
                   lambda: client.as_user(alice).current_user(),
                   lambda: as_user(client, "bob").deny(rid, "")):
        try:
            action()
        except Exception as e:      # noqa: BLE001 - swept below
            errors.append(e)

    assert len(errors) == 6
    assert caplog.records, "the sweep needs something logged"
    text = caplog.text + "\n".join(f"{e!r} {e}" for e in errors)
    forbidden = (set(PASSWORDS.values()) | {"dave-otp-pw", "bob-wrong-pw", "246810"}
                 | ss.issued_tokens() | ss.secret_field_values())
    leaked = sorted(x for x in forbidden if x in text)
    assert leaked == []


def test_many_people_at_once_keep_their_connections_to_secret_server(ss, w, make_client, caplog):
    # Test setup: one client, as the click workers, modals and sign-ins share it; Secret Server
    # holds each listing until twenty are in flight together.
    client = make_client()
    client.list_pending()                         # signed in before the burst
    together = threading.Barrier(20)
    ss.before_answer(r"/api/v1/secret-access-requests$", lambda call: together.wait(10))
    # Test execution: twenty calls at the same moment.
    threads = [threading.Thread(target=client.list_pending) for _ in range(20)]
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
    # Validating: every connection went back to the pool (none discarded, each of which would
    # be a new connection, and a TLS handshake, for the next call).
    assert not together.broken
    assert "Connection pool is full" not in caplog.text


def test_each_retry_logged_is_a_retry_made(ss, w, make_client, fake, caplog):
    # Test setup: Secret Server answers 503 for longer than the client's retry budget.
    client = make_client()
    client.list_pending()
    ss.fail(r"/api/v1/secret-access-requests$", status=503, times=100)
    # Test execution: a listing, retried until the budget is spent.
    with caplog.at_level(logging.WARNING, logger="relay.ss"), pytest.raises(SecretServerUnavailable):
        client.list_pending()
    # Validating: one "retrying" line per wait actually made; the last failure is not announced
    # as a retry that never came.
    retrying = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert fake.waits and len(retrying) == len(fake.waits)


def test_a_read_that_hangs_ends_with_the_retry_budget_not_the_read_timeout(ss, w, make_client):
    # Test setup: a person's client (2 s to answer them), a read timeout longer than the
    # stand-in's longest hang (30 s), and a Secret Server that takes the request and then says
    # nothing.
    client = make_client(retry_seconds=2.0, timeout=60.0)
    rid = ss.create_request(w.db_secret, w.alice, comment="look")
    client.get_request(rid)
    released = threading.Event()
    ss.fail(rf"/api/v1/secret-access-requests/{rid}$", hang=released, times=5)
    try:
        # Test execution and validating: the read gives up within the budget, so the person
        # hears "Secret Server could not be reached" instead of waiting out the read timeout
        # (which would have ended here with a late success).
        with pytest.raises(SecretServerUnavailable):
            client.get_request(rid)
    finally:
        released.set()
