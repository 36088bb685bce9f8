"""The Secret Server stand-in's wire shapes, checked with plain `requests` (no relay code)."""

from __future__ import annotations

import re

import pytest
import requests

from relay.sandbox.secret_server import SecretServerStandIn

ENVELOPE = {"batchCount", "currentPage", "hasNext", "hasPrev", "nextSkip", "pageCount",
            "prevSkip", "records", "severity", "skip", "sortBy", "success", "take", "total"}


@pytest.fixture
def ss():
    with SecretServerStandIn() as standin:
        standin.alice = standin.add_user("alice", "pw-a")
        standin.bob = standin.add_user("bob", "pw-b")
        standin.dba = standin.add_group("DBA", [standin.bob])
        standin.secret = standin.add_secret("db", viewers=[standin.alice], requires_approval=True,
                                            approvers=[standin.dba], fields={"password": "s3cr3t"})
        yield standin


def login(ss, user, password, **extra):
    r = requests.post(ss.base_url + "/oauth2/token",
                      data={"grant_type": "password", "username": user, "password": password,
                            **extra})
    return r


def bearer(ss, user, password):
    return {"Authorization": "Bearer " + login(ss, user, password).json()["access_token"]}


def test_ids_follow_the_documented_ranges(ss):
    assert (ss.alice, ss.bob) == (1, 2)
    assert ss.personal_group(ss.alice) == 100 and ss.dba == 102
    assert ss.secret == 1000
    assert ss.add_folder("Prod") == 10
    assert ss.create_request(ss.secret, ss.alice) == 1


def test_token_answer_and_bad_credentials(ss):
    ok = login(ss, "alice", "pw-a").json()
    assert set(ok) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert (ok["token_type"], ok["expires_in"]) == ("bearer", 1200)
    bad = login(ss, "alice", "nope")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    assert ss.calls[0].body["password"] == "***"                # never recorded


def test_refresh_token_is_single_use(ss):
    rt = login(ss, "alice", "pw-a").json()["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": rt}
    assert requests.post(ss.base_url + "/oauth2/token", data=form).status_code == 200
    again = requests.post(ss.base_url + "/oauth2/token", data=form)
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})


def test_missing_and_expired_tokens(ss):
    url = ss.base_url + "/api/v1/users/current"
    assert requests.get(url).status_code == 401
    h = bearer(ss, "alice", "pw-a")
    assert requests.get(url, headers=h).json()["userName"] == "alice"
    ss.expire_all_tokens()
    assert requests.get(url, headers=h).status_code == 401
    ss.auth_failure_status = 403
    r = requests.get(url, headers=h)
    assert (r.status_code, r.json()) == (403, {"message": "Authentication failed"})


def test_current_user_is_delineas_current_user_model(ss):
    # GET /api/v1/users/current -> CurrentUserModel: userName (capital N) and emailAddress
    me = requests.get(ss.base_url + "/api/v1/users/current", headers=bearer(ss, "alice", "pw-a")).json()
    assert (me["id"], me["userName"], me["emailAddress"]) == (ss.alice, "alice", "alice@example.com")
    assert {"displayName", "permissions"} <= set(me)


def test_revoked_token_is_refused(ss):
    h = bearer(ss, "alice", "pw-a")
    assert requests.post(ss.base_url + "/api/v1/oauth-expiration", headers=h).json() is True
    assert requests.get(ss.base_url + "/api/v1/users/current", headers=h).status_code == 401


def test_paging_envelope_aliases_and_cap(ss):
    for _ in range(3):
        ss.create_request(ss.secret, ss.alice)
    h = bearer(ss, "bob", "pw-b")
    url = ss.base_url + "/api/v1/secret-access-requests"
    page = requests.get(url, headers=h, params={"filter.status": "Pending", "paging.skip": 1,
                                                "paging.take": 1}).json()
    assert set(page) == ENVELOPE
    assert (page["skip"], page["take"], page["total"], page["hasNext"], page["hasPrev"]) == \
        (1, 1, 3, True, True)
    assert [r["secretAccessRequestId"] for r in page["records"]] == [2]
    assert (page["severity"], page["success"]) == ("None", True)
    assert requests.get(url, headers=h, params={"take": 5000}).json()["take"] == 1000


def test_request_model_fields_and_timestamp_format(ss):
    rid = ss.create_request(ss.secret, ss.alice, comment="c")
    h = bearer(ss, "bob", "pw-b")
    m = requests.get(f"{ss.base_url}/api/v1/secret-access-requests/{rid}/pending", headers=h).json()
    assert {"secretAccessRequestId", "secretId", "secretName", "folderId", "requestingUserId",
            "requestUsername", "requestComment", "requestDate", "startDate", "expirationDate",
            "status", "statusDescription", "reviewStatusMessage", "approverDisplayName",
            "responseComment", "responseDate", "completed", "hasWorkflow",
            "accessRequestWorkflowMapId", "currentUserRestrictedFromReviewing", "ticketNumber",
            "ticketSystemId", "currentStepApprovers", "currentStepReviewers"} <= set(m)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", m["requestDate"])
    assert m["currentStepReviewers"] == [{"displayName": "DBA", "groupId": ss.dba, "isUser": False}]


def test_invisible_and_removed_requests_are_access_denied(ss):
    rid = ss.create_request(ss.secret, ss.alice)
    url = f"{ss.base_url}/api/v1/secret-access-requests/{rid}"
    outsider = ss.add_user("eve", "pw-e")
    assert outsider
    for h in (bearer(ss, "eve", "pw-e"),):
        r = requests.get(url, headers=h)
        assert (r.status_code, r.json()) == (400, {"errorCode": "API_AccessDenied",
                                                   "message": "Access denied"})
    ss.remove(rid)
    assert requests.get(url, headers=bearer(ss, "alice", "pw-a")).status_code == 400


def test_unknown_path_is_json_404(ss):
    r = requests.get(ss.base_url + "/api/v1/nothing-here", headers=bearer(ss, "alice", "pw-a"))
    assert r.status_code == 404 and "message" in r.json()


def test_faults_500_html_and_429(ss):
    url = ss.base_url + "/api/v1/healthcheck"
    ss.fail("healthcheck", status=500)
    body = requests.get(url).json()
    assert set(body) == {"message", "exceptionMessage", "exceptionType", "stackTrace"}
    ss.fail("healthcheck", html=True)
    r = requests.get(url)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    ss.fail("healthcheck", status=429, retry_after=2)
    assert requests.get(url).headers["Retry-After"] == "2"
    assert requests.get(url).json()["healthy"] is True          # faults used up


def test_secret_values_are_never_served(ss):
    h = bearer(ss, "alice", "pw-a")
    r = requests.get(ss.base_url + "/api/v1/secrets", headers=h,
                     params={"filter.includeRestricted": "true"})
    assert [s["name"] for s in r.json()["records"]] == ["db"]
    assert "s3cr3t" not in r.text
    hidden = requests.get(ss.base_url + "/api/v2/secrets", headers=h).json()
    assert hidden["records"] == []                            # restricted hidden by default
