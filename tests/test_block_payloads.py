"""Whole Block Kit payloads of every builder, compared with golden files (tests/golden/).

The people and requests are the same in every test: Rita asks for prod-db, Alice decides.
Regenerate after an intended change: SSRELAY_REGEN_GOLDEN=1 (see tests/golden.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from golden import assert_golden

from relay.actions import APPROVE, CANCEL, DENY, DONE, FAILED, FORBIDDEN, STALE, Outcome
from relay.model import AccessRequest
from relay.slack import blocks, home, replies

REQUESTED = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
DECIDED = datetime(2026, 11, 28, 10, 42, tzinfo=UTC)
SECRET_URL = "https://ss.example.com/app/#/secrets/1005/general"
REQUEST_URL = "https://ss.example.com/app/#/requests/5"
CTX = {"folder_name": "Databases", "requester_name": "Rita Requester"}


def req(**kw) -> AccessRequest:
    base: dict = {"id": 5, "secret_id": 1005, "secret_name": "prod-db", "folder_id": 10, "requester_id": 20,
                  "requester_username": "rita", "status": "Pending", "comment": "rotate the keys", "ticket": "INC-42",
                  "requested_at": REQUESTED}
    base.update(kw)
    return AccessRequest(**base)


APPROVED = req(status="Approved", decided_by="Alice Approver", decided_at=DECIDED, start=DECIDED,
               expiration=DECIDED + timedelta(hours=8), response_comment="ok for today")
DENIED = req(status="Denied", decided_by="Bob <Approver>", decided_at=DECIDED, response_comment="use staging")


def test_approval_card_with_every_fact():
    r = req(start=DECIDED, expiration=DECIDED + timedelta(hours=4))
    assert_golden("approval_card_full", blocks.approval_card(r, CTX, secret_url=SECRET_URL, default_hours=8,
                                                             request_url=REQUEST_URL))


def test_approval_card_with_the_fewest_facts():
    r = req(folder_id=None, comment="", ticket="", requested_at=None)
    assert_golden("approval_card_minimal", blocks.approval_card(r, {}, secret_url="", default_hours=8.5))


def test_approval_card_with_a_folder_id_only_and_an_open_start():
    r = req(comment="", expiration=DECIDED)
    assert_golden("approval_card_folder_id", blocks.approval_card(r, {}, secret_url="", default_hours=8))


@pytest.mark.parametrize("r", [APPROVED, DENIED, req(status="Canceled", decided_at=DECIDED),
                               req(status="Expired"), req(status="Pending"), req(status="WaitingForRequest"),
                               req(status="Denied")],
                         ids=["approved", "denied", "canceled", "expired", "pending", "waiting", "denied_by_nobody"])
def test_closed_card(r):
    assert_golden(f"closed_card_{r.status.lower()}{'_anon' if not r.decided_by else ''}",
                  blocks.closed_card(r, CTX, secret_url=SECRET_URL, default_hours=8))


def test_canceled_notice():
    r = req(status="Canceled")
    assert_golden("canceled_notice", [blocks.canceled_notice(r, CTX, secret_url=SECRET_URL),
                                      blocks.canceled_notice(r, {}, secret_url="")])


def test_outcome_message_approved_with_launch_and_template():
    ctx = {**CTX, "template_name": "SQL Server Account"}
    assert_golden("outcome_approved", blocks.outcome_message(APPROVED, ctx, secret_url=SECRET_URL, default_hours=8,
                                                             launch=True))


def test_outcome_message_approved_with_the_fewest_facts():
    r = req(status="Approved", folder_id=None, comment="", expiration=DECIDED)
    assert_golden("outcome_approved_minimal", blocks.outcome_message(r, {}, secret_url="", default_hours=8))


def test_outcome_message_for_an_approval_already_over_says_approved():
    # the requester first hears of a decision once the window has passed: still "approved"
    r = req(status="Expired", decided_by="Alice", decided_at=DECIDED, expiration=DECIDED + timedelta(hours=1))
    assert_golden("outcome_expired", blocks.outcome_message(r, {}, secret_url="", default_hours=8))


def test_closed_card_of_a_cancel_without_context_names_the_requester_s_username():
    r = req(status="Canceled")
    _, blks = blocks.closed_card(r, {}, secret_url="", default_hours=8)
    assert blks[-1]["elements"][0]["text"] == ":no_entry_sign: Canceled by rita"


def test_outcome_message_denied():
    assert_golden("outcome_denied", blocks.outcome_message(DENIED, CTX, secret_url=SECRET_URL, default_hours=8,
                                                           launch=True))


def test_expired_notice():
    r = req(status="Expired", secret_name="prod<db>")
    assert_golden("expired_notice", [blocks.expired_notice(r, CTX, secret_url=SECRET_URL),
                                     blocks.expired_notice(r, CTX, secret_url="")])


def test_open_in_ss_button():
    assert_golden("open_in_ss", blocks.open_in_ss(REQUEST_URL))


# -- replies after a click ---------------------------------------------------------------------

OUTCOMES = {
    "done_approve_final": Outcome(DONE, APPROVE, 5, APPROVED, context=CTX),
    "done_approve_step": Outcome(DONE, APPROVE, 5, req(review_status="Step 2 of 2"), context=CTX),
    "done_deny": Outcome(DONE, DENY, 5, DENIED, context=CTX),
    "done_cancel": Outcome(DONE, CANCEL, 5, req(status="Canceled"), context=CTX),
    "stale": Outcome(STALE, APPROVE, 5, DENIED, context=CTX),
    "forbidden": Outcome(FORBIDDEN, APPROVE, 5, req(), detail="You cannot review <your own> request."),
    "failed": Outcome(FAILED, DENY, 5, None, detail="Secret Server did not answer."),
}


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_notice_after_a_click(name):
    assert_golden(f"notice_{name}", replies.notice(OUTCOMES[name]))


@pytest.mark.parametrize("name", ["done_approve_final", "done_deny", "stale"])
def test_updated_card_after_a_click(name):
    assert_golden(f"updated_card_{name}", replies.updated_card(OUTCOMES[name], secret_url=SECRET_URL,
                                                               default_hours=8))


@pytest.mark.parametrize("status", ["Approved", "Denied", "Canceled", "Expired", "WaitingForRequest", "Odd<x>"])
def test_explain_a_late_click(status):
    r = req(status=status, decided_by="Alice" if status != "Denied" else "", decided_at=DECIDED
            if status == "Approved" else None)
    assert_golden(f"explain_{status.lower().replace('<', '').replace('>', '')}", replies.explain(r))


def test_signin_prompt_and_completion():
    assert_golden("signin_prompt", [replies.signin_prompt("https://relay.example.com/signin?s=1", a)
                                    for a in (APPROVE, DENY, CANCEL, "launch", None)])
    assert_golden("completed_after_signin", replies.completed_after_signin(OUTCOMES["done_deny"]))


def test_reason_modals():
    assert_golden("reason_modals", [replies.reason_modal(APPROVE, 5, "Rita asks for *prod-db*", {"team": "T1"}),
                                    replies.reason_modal(DENY, 5, "", {})])


# -- the Home tab ------------------------------------------------------------------------------

def items(n: int, **kw) -> tuple[home.HomeItem, ...]:
    return tuple(home.HomeItem(req(id=100 + i, secret_id=2000 + i, secret_name=f"db-{i}", **kw), dict(CTX))
                 for i in range(n))


def test_home_view_signed_in_with_both_lists():
    data = home.HomeData(signed_in=True, ss_username="rita", notice=":white_check_mark: Done.",
                         my_pending=items(2, review_status="Step 1 of 2"), to_review=items(2, ticket=""))
    view = home.home_view(data, signin_url="https://relay.example.com/signin?s=1",
                          secret_url=lambda sid: f"https://ss.example.com/s/{sid}", default_hours=8,
                          more_url="https://ss.example.com/requests",
                          request_url=lambda rid, sid: f"https://ss.example.com/r/{rid}?s={sid}")
    assert_golden("home_signed_in", view)


def test_home_view_signed_out_and_empty():
    view = home.home_view(home.HomeData(signed_in=False), signin_url="https://relay.example.com/signin?s=2")
    assert_golden("home_signed_out", view)


def test_home_view_cuts_long_lists_to_the_block_limit():
    data = home.HomeData(signed_in=True, my_pending=items(70), to_review=items(70, comment="x" * 400))
    view = home.home_view(data, signin_url="https://relay.example.com/signin?s=3", more_url="")
    assert len(view["blocks"]) <= home.VIEW_BLOCK_LIMIT
    assert_golden("home_long_lists", view)
