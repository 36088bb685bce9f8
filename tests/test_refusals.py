"""Secret Server refusals become error types in one place (relay.ss.refusals): each body as SS
(or the stand-in, where SS's own is not published) sends it -> the subtype the relay catches."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relay.errors import (
    AccessDenied,
    ApprovalRequired,
    AuthenticationFailed,
    CommentRequired,
    NotAReviewer,
    OtpRequired,
    RequestNotPending,
    RequestRejected,
    SessionExpired,
    TicketRequired,
)
from relay.sandbox import ss_world
from relay.sandbox.secret_server import SecretServerStandIn
from relay.ss import refusals
from relay.ss.client import RelayCredentials, SecretServerClient

FIXTURES = Path(__file__).parent / "fixtures" / "ss"
REQUESTS = "/api/v1/secret-access-requests"


def _bad_request(field: str, problem: str) -> dict:
    return ss_world.bad_request(field, problem).body


BODIES = [
    # Delinea's BadRequestResponse for an object this account may not see
    ("fixture BadRequestResponse", json.loads((FIXTURES / "BadRequestResponse.json").read_text()),
     AccessDenied),
    ("access denied, Terraform provider's wording",
     {"errorCode": "API_AccessDenied", "message": "Access denied"}, AccessDenied),
    ("decided already", ss_world.NOT_PENDING, RequestNotPending),
    ("decided already, no code", {"message": "The request is no longer pending."}, RequestNotPending),
    ("own request, no code", ss_world.CANNOT_REVIEW, NotAReviewer),
    ("not allowed, no code", {"message": "You are not allowed to approve this request.",
                              "errorCode": ""}, NotAReviewer),
    ("launch before approval", {"message": "Approval is required to access this secret.",
                                "errorCode": "API_ApprovalRequired"}, ApprovalRequired),
    ("create without ticket", _bad_request("args.TicketNumber",
                                           "A ticket number is required for this secret."), TicketRequired),
    ("create without comment", _bad_request("args.RequestComment",
                                            "A comment is required for this secret."), CommentRequired),
    ("deny without comment", _bad_request("args.ResponseComment", "A comment is required."),
     RequestRejected),
    ("approve without expiration", _bad_request("args.ExpirationDate", "The field is required."),
     RequestRejected),
    ("token endpoint", {"error": "invalid_grant", "error_description": "Invalid username or password"},
     RequestRejected),
    ("not JSON object", ["unexpected"], RequestRejected),
]


@pytest.mark.parametrize("body, kind", [(b, k) for _, b, k in BODIES], ids=[n for n, _, _ in BODIES])
def test_each_refusal_body_becomes_its_subtype(body, kind):
    err = refusals.refusal(400, body, REQUESTS)
    assert type(err) is kind
    assert err.status == 400 and err.path == REQUESTS


def test_the_refusal_keeps_code_message_and_model_state():
    err = refusals.refusal(400, ss_world.NOT_PENDING, REQUESTS)
    assert isinstance(err, RequestRejected)
    assert err.error_code == "API_RequestNotPending"
    assert str(err) == f"Secret Server: The request is no longer pending. [{REQUESTS}]"
    ticket = refusals.refusal(400, _bad_request("args.TicketNumber", "needed"), REQUESTS)
    assert isinstance(ticket, RequestRejected)
    assert ticket.model_state == {"args.TicketNumber": ["needed"]}
    assert str(refusals.refusal(404, ["x"], REQUESTS)) == f"Secret Server: HTTP 404 [{REQUESTS}]"


def test_token_endpoint_error_becomes_the_code():
    err = refusals.refusal(400, {"error": "invalid_grant", "error_description": "OTP required"},
                           "/oauth2/token")
    assert isinstance(err, RequestRejected) and err.error_code == "invalid_grant"
    assert refusals.wants_otp(err)
    wrong_password = refusals.refusal(400, {"error": "invalid_grant",
                                            "error_description": "Invalid username or password"},
                                      "/oauth2/token")
    assert isinstance(wrong_password, RequestRejected)
    assert not refusals.wants_otp(wrong_password)


# ---------------------------------------------------------------------- through the real client
PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "svc-relay": "relay-pw-5"}


@pytest.fixture
def world():
    with SecretServerStandIn() as ss:
        ids = {name: ss.add_user(name, pw) for name, pw in PASSWORDS.items()}
        dba = ss.add_group("DBA", [ids["bob"], ids["svc-relay"]])
        secret = ss.add_secret("prod-db admin", viewers=[ids["alice"], dba], requires_approval=True,
                               approvers=[dba], launchers=[{"launcherId": 7, "launcherName": "SQL Server",
                                                            "promptedField": False, "restrictedHosts": []}])
        ticketed = ss.add_secret("billing", viewers=[ids["alice"]], requires_approval=True,
                                 approvers=[dba], requires_ticket=True)
        commented = ss.add_secret("payroll", viewers=[ids["alice"]], requires_approval=True,
                                  approvers=[dba], requires_comment=True)
        with SecretServerClient(ss.base_url, credentials=RelayCredentials("svc-relay", PASSWORDS["svc-relay"]),
                                retry_seconds=5.0, timeout=5.0) as client:
            yield ss, client, ids, {"db": secret, "ticketed": ticketed, "commented": commented}


def _as(client, name):
    return client.as_user(client.login_user(name, PASSWORDS[name]))


def test_stand_in_refusals_arrive_as_subtypes(world):
    ss, client, ids, secrets = world
    alice, bob = _as(client, "alice"), _as(client, "bob")
    now = datetime.now(UTC)
    rid = ss.create_request(secrets["db"], ids["alice"])
    with pytest.raises(NotAReviewer):                                   # own request
        alice.approve(rid, now, now + timedelta(hours=1), "me")
    with pytest.raises(ApprovalRequired):
        alice.launch(secrets["db"], 7)
    ss.approve(rid, ids["bob"], "ok")
    with pytest.raises(RequestNotPending):
        bob.deny(rid, "too late")
    with pytest.raises(TicketRequired):
        alice.create_request(secrets["ticketed"], "need it")
    with pytest.raises(CommentRequired):
        alice.create_request(secrets["commented"], "")
    with pytest.raises(AccessDenied):
        bob.secret_summary(secrets["ticketed"])


def test_missing_otp_is_otp_required(world):
    ss, client, _, _ = world
    ss.add_user("dave", "dave-pw", otp="123456")
    with pytest.raises(OtpRequired) as missing:
        client.login_user("dave", "dave-pw")
    with pytest.raises(AuthenticationFailed) as wrong_password:
        client.login_user("dave", "nope", otp="123456")
    assert missing.value.otp_required
    assert not isinstance(wrong_password.value, OtpRequired | SessionExpired)
