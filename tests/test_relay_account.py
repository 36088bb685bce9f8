"""The relay account sits in the approver groups it watches (so it can list their requests),
and the requester may sit in them too: neither is ever asked to review. A story through the
real clients against the Secret Server and Slack stand-ins."""

from __future__ import annotations

import json

from conftest import cycle


def test_neither_the_relay_account_nor_the_requester_is_asked_to_review(sandbox, make_relay):
    # Test setup: the approver group holds Alice, Bob, the relay account and, today, Rita herself.
    group = sandbox.ss.add_group("Approvers incl. requester",
                                 [sandbox["alice"].ss_id, sandbox["bob"].ss_id, sandbox.relay_ss_id,
                                  sandbox["rita"].ss_id])
    relay = make_relay()
    rid = sandbox.ss.create_request(sandbox.secrets["prod-db"], sandbox["rita"].ss_id, comment="hotfix",
                                    steps=[[group]])
    # Test execution: two polls.
    cycle(relay)
    cycle(relay)
    # Validating: approval messages went to Alice and Bob only, once each.
    asked = relay.db.get().execute(
        "SELECT recipient FROM outbox WHERE request_id = ? AND event = 'approval_requested' ORDER BY recipient",
        [rid]).fetchall()
    assert [r[0] for r in asked] == sorted([sandbox["alice"].ss_id, sandbox["bob"].ss_id])
    stored = relay.db.get().execute("SELECT reviewers FROM access_requests WHERE id = ?", [rid]).fetchone()[0]
    assert sandbox.relay_ss_id not in json.loads(stored)
