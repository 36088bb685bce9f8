"""The client and the stand-in against Delinea's published API models.

`tests/fixtures/ss/*.json` are response bodies transcribed from the models (see the folder's
README). Two checks: the client's parsers read every fixture as intended, and the stand-in
answers each endpoint in the same shape: only keys of that model, with the same JSON types
(a null on either side is allowed: most model fields are optional), and every key the
client reads present."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from relay.errors import AccessDenied
from relay.model import PENDING
from relay.sandbox.secret_server import SecretServerStandIn
from relay.secrets import LaunchLink, launch_link
from relay.ss import parse
from relay.ss.client import SecretServerClient

FIXTURES = Path(__file__).parent / "fixtures" / "ss"


def fixture(model: str) -> Any:
    return json.loads((FIXTURES / f"{model}.json").read_text())


# ---------------------------------------------------------------------- the client's parsers
def test_access_request_listing_and_record():
    page = fixture("PagingOfSecretAccessModel")
    [rec] = parse.records(page, "/x")
    r = parse.parse_access_request(rec)
    assert (r.id, r.secret_id, r.secret_name, r.status, r.requester_id, r.ticket) == \
        (42, 1001, "prod-db admin", PENDING, 5, "INC-1234")
    assert r.requested_at == datetime(2026, 12, 2, 9, 41, 7, 373000, tzinfo=UTC)
    assert parse.listing_entry(rec)[0] == 42
    assert parse.parse_access_request(fixture("SecretAccessModel")).id == 42


def test_pending_request_reviewers():
    reviewers = parse.parse_step_reviewers(fixture("SecretAccessPendingRequestModel"))
    assert [(x.display_name, x.group_id, x.is_user) for x in reviewers] == \
        [("DB Approvers", 103, False), ("Alice Approver", 7, True)]


def test_update_answer():
    r = parse.parse_access_request(fixture("SecretAccessActionResultModel"))
    assert (r.status, r.decided_by, r.response_comment) == ("Approved", "Alice Approver", "go ahead")


def test_users_and_group_members():
    for model in ("CurrentUserModel", "UserModel"):
        p = parse.parse_user(fixture(model))
        assert (p.id, p.username, p.email) == (6, "alice", "alice@example.com")
    [member] = parse.records(fixture("PagingOfGroupUserSummary"), "/x")
    assert parse.parse_group_member(member).id == 6


def test_secrets_and_launchers():
    s = parse.parse_secret(fixture("SecretSummary"))
    assert (s.id, s.name, s.folder_id, s.requires_approval, s.has_launcher) == \
        (1001, "prod-db admin", 12, True, True)
    [row] = parse.records(fixture("PagingOfSecretSummary"), "/x")
    assert parse.parse_secret(row).id == 1001
    [launcher] = parse.records(fixture("PagingOfLauncherDetailsV2"), "/x")
    lx = parse.parse_launcher(launcher)
    assert (lx.launcher_id, lx.prompted, lx.restricted_hosts) == (7, True, ("srv01.corp", "srv02.corp"))
    link = launch_link(fixture("LaunchedSecretModel"), "https://ss.example.com/SecretServer")
    assert link == LaunchLink("sslauncher:///?guid=5f0c6a1e-8d2b-4c3e-9a7f-2b1d0e4c6a88")


# ---------------------------------------------------------------------- the stand-in's shapes
def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}[type(value)]


def shape_problems(model: Any, actual: Any, where: str = "$", *, casefold: bool = False) -> list[str]:
    """What in `actual` does not fit the shape of `model` (a transcribed body)."""
    if model is None or actual is None:
        return []
    if json_type(model) != json_type(actual):
        return [f"{where}: {json_type(actual)} where the model has {json_type(model)}"]
    if isinstance(model, list):
        if not model:
            return []
        return [p for i, item in enumerate(actual) for p in shape_problems(model[0], item, f"{where}[{i}]")]
    if isinstance(model, dict):
        keys = {k.lower() if casefold else k: k for k in model}
        out = []
        for k, v in actual.items():
            mk = keys.get(k.lower() if casefold else k)
            if mk is None:
                out.append(f"{where}.{k}: not in the model")
            else:
                out += shape_problems(model[mk], v, f"{where}.{k}")
        return out
    return []


# the top-level keys the client reads, per model
READS = {
    "PagingOfSecretAccessModel": {"records", "total"},
    "SecretAccessModel": {"secretAccessRequestId", "secretId", "status", "requestingUserId"},
    "SecretAccessPendingRequestModel": {"currentStepReviewers", "status"},
    "CurrentUserModel": {"id", "userName", "emailAddress"},
    "UserModel": {"id", "userName", "emailAddress", "lastSessionActivity"},
    "PagingOfGroupUserSummary": {"records", "total"},
    "FolderModel": {"folderName"},
    "SecretSummary": {"id", "name", "folderId", "requiresApproval", "hasLauncher"},
    "PagingOfSecretSummary": {"records", "total"},
    "PagingOfLauncherDetailsV2": {"records", "total"},
    "LaunchedSecretModel": {"guid", "baseUrl", "ssUrl"},
    "HealthCheckModel": {"healthy"},
    "SecretAccessActionResultModel": {"secretAccessRequestId", "status"},
    "BadRequestResponse": {"errorCode", "message"},
}


@pytest.fixture(scope="module")
def answers() -> dict[str, Any]:
    """One answer of the stand-in per model, fetched over HTTP as a person would."""
    with SecretServerStandIn() as ss:
        alice = ss.add_user("alice", "alice-pw", email="alice@example.com")
        bob = ss.add_user("bob", "bob-pw")
        group = ss.add_group("DB Approvers", [bob])
        folder = ss.add_folder("Databases", "\\Production\\Databases")
        secret = ss.add_secret("prod-db admin", folder_id=folder, viewers=[alice, bob],
                               requires_approval=True, approvers=[group], launchers=[
                                   {"launcherId": 7, "launcherName": "SSMS", "promptedField": True,
                                    "restrictedHosts": ["srv01.corp"]}])
        rid = ss.create_request(secret, alice, comment="restore", ticket="INC-1")
        base = ss.base_url
        http = requests.Session()

        def token(user: str, pw: str) -> dict:
            t = http.post(base + "/oauth2/token", data={"grant_type": "password", "username": user,
                                                        "password": pw}).json()["access_token"]
            return {"Authorization": f"Bearer {t}"}
        as_alice, as_bob = token("alice", "alice-pw"), token("bob", "bob-pw")

        def get(path: str, who: dict, **params) -> Any:
            return http.get(base + path, headers=who, params=params).json()
        out = {
            "PagingOfSecretAccessModel": get("/api/v1/secret-access-requests", as_bob, **{
                "filter.status": "Pending", "sortBy[0].name": "secretAccessRequestId",
                "sortBy[0].direction": "asc"}),
            "SecretAccessModel": get(f"/api/v1/secret-access-requests/{rid}", as_bob),
            "SecretAccessPendingRequestModel": get(f"/api/v1/secret-access-requests/{rid}/pending", as_bob),
            "CurrentUserModel": get("/api/v1/users/current", as_alice),
            "UserModel": get(f"/api/v1/users/{alice}", as_bob),
            "PagingOfGroupUserSummary": get(f"/api/v1/groups/{group}/users", as_bob),
            "FolderModel": get(f"/api/v1/folders/{folder}", as_bob),
            "SecretSummary": get(f"/api/v1/secrets/{secret}/summary", as_alice),
            "PagingOfSecretSummary": get("/api/v2/secrets", as_alice, **{"filter.searchText": "prod",
                                                                         "filter.includeRestricted": "true"}),
            "PagingOfLauncherDetailsV2": get("/api/v2/launchers/secret", as_alice, **{"filter.secretId": secret}),
            "HealthCheckModel": http.get(base + "/api/v1/healthcheck").json(),
            "BadRequestResponse": get("/api/v1/secret-access-requests/999999", as_alice),
        }
        ss.approve(rid, bob, "ok", expiration=datetime(2099, 1, 1, tzinfo=UTC))
        out["LaunchedSecretModel"] = http.post(base + "/api/v1/launchers/secret", headers=as_alice, json={
            "secretId": secret, "launcherId": 7, "promptFieldValue": "srv01.corp"}).json()
        rid2 = ss.create_request(secret, alice)
        out["SecretAccessActionResultModel"] = http.put(
            base + "/api/v1/secret-access-requests", headers=as_bob,
            json={"secretAccessRequestId": rid2, "status": "Denied", "responseComment": "no",
                  "startDate": "2026-12-02T09:00:00.000"}).json()
        http.close()
        return out


@pytest.mark.parametrize("model", sorted(READS))
def test_stand_in_answers_in_the_models_shape(answers, model):
    expected, actual = fixture(model), answers[model]
    # the health check: the model writes `healthy`, Delinea's own SDK reads `Healthy`; the
    # stand-in answers both, so keys are compared without case there
    assert shape_problems(expected, actual, casefold=model == "HealthCheckModel") == []
    assert READS[model] <= set(actual), f"{model}: the client reads {READS[model] - set(actual)}"
    if isinstance(actual.get("records"), list):
        assert actual["records"], f"{model}: the stand-in listed nothing to compare"


def test_a_drifted_stand_in_answer_is_caught():
    # the check itself: a string host list (the old stand-in shape) and an invented key fail
    expected = fixture("PagingOfLauncherDetailsV2")
    drifted = json.loads(json.dumps(expected))
    drifted["records"][0]["restrictedHosts"] = ["srv01.corp"]
    drifted["records"][0]["hostList"] = []
    assert shape_problems(expected, drifted) == [
        "$.records[0].restrictedHosts[0]: string where the model has object",
        "$.records[0].hostList: not in the model"]


def test_access_denied_fixture_is_access_denied():
    body = fixture("BadRequestResponse")
    resp = requests.Response()
    resp.status_code, resp._content = 400, json.dumps(body).encode()
    resp.headers["Content-Type"] = "application/json"
    with pytest.raises(AccessDenied):
        SecretServerClient._read(resp, "/api/v1/secrets/1/summary", True)
