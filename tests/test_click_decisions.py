"""The pure decision steps of a click (relay.actions) and the per-kind steps of the secrets
workflow (relay.secrets, rendered by relay.slack.secret_flows)."""

from __future__ import annotations

from typing import get_args

import pytest

from relay import secret_steps as steps
from relay.actions import (
    APPROVE,
    BUSY,
    CANCEL,
    CANNOT_REVIEW,
    DENY,
    FAILED,
    FORBIDDEN,
    ONLY_REQUESTER,
    STALE,
    Action,
    Click,
    OutcomeKind,
    after_rejection,
    refusal_before_write,
)
from relay.errors import NotAReviewer, RequestNotPending, RequestRejected
from relay.model import APPROVED, CANCELED, DENIED, PENDING, AccessRequest
from relay.slack.secret_flows import SecretFlows

REQUESTER, REVIEWER, STRANGER = 11, 22, 33


def request(status: str = PENDING) -> AccessRequest:
    return AccessRequest(id=5, secret_id=9, secret_name="prod-db", folder_id=None,
                         requester_id=REQUESTER, requester_username="alice", status=status)


class Reviewers:
    """`may_review` for the decision: records whether it was asked."""

    def __init__(self, *allowed: int):
        self.allowed = set(allowed)
        self.asked: list[int] = []

    def of(self, me: int):
        def may_review() -> bool:
            self.asked.append(me)
            return me in self.allowed
        return may_review


@pytest.mark.parametrize("action, status, me, claimed, expected", [
    (APPROVE, PENDING, REVIEWER, True, None),
    (DENY, PENDING, REVIEWER, True, None),
    (CANCEL, PENDING, REQUESTER, True, None),
    (APPROVE, APPROVED, REVIEWER, True, (STALE, "")),
    (CANCEL, CANCELED, REQUESTER, False, (STALE, "")),          # the state wins over a lost claim
    (DENY, DENIED, STRANGER, True, (STALE, "")),
    (APPROVE, PENDING, REVIEWER, False, (FAILED, BUSY)),
    (CANCEL, PENDING, REVIEWER, True, (FORBIDDEN, ONLY_REQUESTER)),
    (CANCEL, PENDING, None, True, (FORBIDDEN, ONLY_REQUESTER)),
    (APPROVE, PENDING, REQUESTER, True, (FORBIDDEN, CANNOT_REVIEW)),
    (DENY, PENDING, STRANGER, True, (FORBIDDEN, CANNOT_REVIEW)),
])
def test_refusal_before_write(action, status, me, claimed, expected):
    reviewers = Reviewers(REVIEWER)
    assert refusal_before_write(action, request(status), me, claimed, reviewers.of(me)) == expected


def test_reviewer_list_is_asked_only_for_a_decision_by_someone_else():
    reviewers = Reviewers(REVIEWER)
    refusal_before_write(CANCEL, request(), REQUESTER, True, reviewers.of(REQUESTER))
    refusal_before_write(APPROVE, request(), REQUESTER, True, reviewers.of(REQUESTER))
    refusal_before_write(APPROVE, request(APPROVED), REVIEWER, True, reviewers.of(REVIEWER))
    assert reviewers.asked == []
    refusal_before_write(DENY, request(), STRANGER, True, reviewers.of(STRANGER))
    assert reviewers.asked == [STRANGER]


def rejected(kind: type[RequestRejected], message: str = "no") -> RequestRejected:
    return kind(f"Secret Server: {message}", path="/api/v1/secret-access-requests", status=400)


def test_after_rejection_a_decided_request_is_stale_whatever_ss_said():
    live, now = request(), request(APPROVED)
    for exc in (rejected(RequestRejected), rejected(NotAReviewer), rejected(RequestNotPending)):
        assert after_rejection(exc, APPROVE, live, now) == (STALE, now, "")


def test_after_rejection_not_pending_shows_what_is_known():
    live = request()
    assert after_rejection(rejected(RequestNotPending), DENY, live, None) == (STALE, live, "")
    assert after_rejection(rejected(RequestNotPending), DENY, live, live) == (STALE, live, "")


def test_after_rejection_not_a_reviewer_is_forbidden():
    live = request()
    assert after_rejection(rejected(NotAReviewer), APPROVE, live, live) == (FORBIDDEN, live, CANNOT_REVIEW)


def test_after_rejection_anything_else_fails_with_ss_words():
    live = request()
    kind, shown, detail = after_rejection(rejected(RequestRejected, "Expiration too far. " + "x" * 400),
                                          APPROVE, live, None)
    assert (kind, shown) == (FAILED, live)
    assert detail.startswith("Secret Server refused: Expiration too far. x")
    assert len(detail) == len("Secret Server refused: ") + 300


def test_click_builds_outcomes_with_what_each_kind_needs():
    click = Click("U1", "T1", Action("approve"), 5, context={"folder_name": "Prod"})
    done = click.done(REVIEWER, request(APPROVED))
    assert (done.kind, done.action, done.request_id, done.clicker_ss_id, done.context) == \
        (OutcomeKind.DONE, "approve", 5, REVIEWER, {"folder_name": "Prod"})
    assert done.request == request(APPROVED)
    signin = click.sign_in(None, "state-1")
    assert (signin.kind, signin.signin_state, signin.request) == (OutcomeKind.SIGN_IN, "state-1", None)
    refused = click.refused(FORBIDDEN, REQUESTER, None, CANNOT_REVIEW)
    assert (refused.kind, refused.detail) == ("forbidden", CANNOT_REVIEW)


def test_every_secrets_step_has_a_builder():
    kinds = get_args(steps.Step)
    assert set(SecretFlows._BUILDERS) == set(kinds)
    assert {k.kind for k in kinds} == set(steps.StepKind)
