"""Who an SS user is in Slack: the sign-in link first, then users.lookupByEmail, with hits
and misses cached for users.email_cache_hours."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from relay.slack.directory import Unmapped


def remember(relay, sandbox, name):
    from relay.model import Person
    from relay.store.snapshot import remember_people
    p = sandbox[name]
    with relay.db.atomic():
        remember_people(relay.db, [Person(p.ss_id, name, name.title(), p.email)], datetime.now(timezone.utc))


def test_email_lookup_is_cached_hits_and_misses(sandbox, make_relay):
    relay = make_relay()
    remember(relay, sandbox, "alice")
    sandbox.add_person("dave", slack=False)
    remember(relay, sandbox, "dave")
    d = relay.directory
    assert d.slack_user_for(sandbox["alice"].ss_id) == sandbox["alice"].slack_id
    assert d.slack_user_for(sandbox["alice"].ss_id) == sandbox["alice"].slack_id
    for _ in range(2):
        with pytest.raises(Unmapped, match="no Slack user has the e-mail dave@example.com"):
            d.slack_user_for(sandbox["dave"].ss_id)
    assert len(sandbox.slack.calls_to("users.lookupByEmail")) == 2      # one per person


def test_cached_answers_expire(sandbox, make_relay):
    relay = make_relay()
    remember(relay, sandbox, "alice")
    d = relay.directory
    d.slack_user_for(sandbox["alice"].ss_id)
    later = datetime.now(timezone.utc) + timedelta(hours=25)
    d.slack_user_for(sandbox["alice"].ss_id, now=later)
    assert len(sandbox.slack.calls_to("users.lookupByEmail")) == 2


def test_the_sign_in_link_wins_over_the_email(sandbox, make_relay):
    relay = make_relay()
    remember(relay, sandbox, "alice")
    with relay.db.atomic():
        relay.db.execute("INSERT INTO slack_links (slack_user, slack_team, ss_user_id, ss_username, linked_at, "
                         "email_verified_at) VALUES ('UALICE2', 'T0SANDBOX', ?, 'alice', ?, ?)",
                         [sandbox["alice"].ss_id] + [datetime.now(timezone.utc).isoformat()] * 2)
    assert relay.directory.slack_user_for(sandbox["alice"].ss_id) == "UALICE2"
    assert sandbox.slack.calls_to("users.lookupByEmail") == []


def test_email_matching_can_be_switched_off(sandbox, make_relay):
    relay = make_relay(USERS_MATCH_BY_EMAIL="false")
    remember(relay, sandbox, "alice")
    with pytest.raises(Unmapped, match="users.match_by_email is off"):
        relay.directory.slack_user_for(sandbox["alice"].ss_id)
    assert sandbox.slack.calls_to("users.lookupByEmail") == []
    reason = relay.db.execute("SELECT reason FROM unmapped_people").fetchone()[0]
    assert "not signed in" in reason


def test_a_reviewer_who_signs_in_later_gets_the_approval_messages_they_missed(sandbox, make_relay):
    from conftest import cycle
    from relay.outbox import Outbox
    from relay.ss.client import TokenSet
    from relay.model import Person
    # Dave approves for the group but has no Slack account with his SS e-mail (so his sign-in
    # links only where the operator turned the e-mail check off).
    sandbox.add_person("dave", display_name="Dave Late", slack=False)
    sandbox.ss.add_to_group(sandbox.groups["approvers"], sandbox["dave"].ss_id)
    sandbox.slack.add_user("UDAVEWORK", email="dave.work@example.com", name="dave")
    relay = make_relay(USERS_SIGNIN_REQUIRES_EMAIL_MATCH="false")
    sandbox.ss.create_request(sandbox.secrets["prod-db"], sandbox["rita"].ss_id, comment="x")
    cycle(relay)
    assert [d["recipient"] for d in Outbox(relay.db).dead_letters()] == [sandbox["dave"].ss_id]
    # Dave signs in from his Slack account: the relay links it and sends what he missed.
    tokens = TokenSet("access", "refresh", datetime.now(timezone.utc) + timedelta(hours=1))
    relay.interactions.sessions.link("UDAVEWORK", "T0SANDBOX",
                                     Person(sandbox["dave"].ss_id, "dave", "Dave Late", "dave@example.com"), tokens)
    while relay.delivery.deliver_due():
        pass
    got = [c for c in sandbox.slack.calls_to("chat.postEphemeral") if c.args["user"] == "UDAVEWORK"]
    assert len(got) == 1 and Outbox(relay.db).dead_letters() == []
    assert relay.db.execute("SELECT COUNT(*) FROM unmapped_people").fetchone()[0] == 0
