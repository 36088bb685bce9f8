"""What goes wrong between the relay and Secret Server or Slack, and what the relay does:
abandon a cycle rather than invent news, keep notifications until they are delivered or
dead-lettered with a reason, and never write a secret into a log."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta, timezone

from conftest import cycle
from relay.outbox import Outbox

LISTING = r"/api/v1/secret-access-requests$"


def ask_many(sb, n: int) -> list[int]:
    return [sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment=f"job {i}") for i in range(n)]


def test_listing_spans_pages(sandbox, make_relay):
    relay = make_relay()
    relay.ss.page_size = 5
    ask_many(sandbox, 12)
    cycle(relay)
    pages = [c.query.get("skip") for c in sandbox.ss.calls_to(LISTING, "GET")]
    assert [str(s) for s in pages] == ["0", "4", "8"]       # pages overlap by one record
    assert len(sandbox.slack.calls_to("chat.postEphemeral")) == 24


def test_failure_on_page_two_of_three_produces_no_events(sandbox, make_relay):
    relay = make_relay()
    relay.ss.page_size = 5
    relay.ss.retry_seconds = 0.2
    ask_many(sandbox, 12)
    sandbox.ss.fail(LISTING, status=500, times=1000, after=1)
    result = cycle(relay, expect_ok=False)
    assert "SecretServerUnavailable" in result.error
    assert relay.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    assert relay.db.execute("SELECT COUNT(*) FROM access_requests").fetchone()[0] == 0
    assert sandbox.slack.calls_to("chat.postEphemeral") == []
    # HTML on a 200 for page 2 is not data either.
    sandbox.ss._faults.clear()
    sandbox.ss.fail(LISTING, html=True, times=1, after=1)
    assert "SecretServerBadResponse" in cycle(relay, expect_ok=False).error
    assert relay.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    # Once SS answers again, the cycle goes through.
    cycle(relay)
    assert len(sandbox.slack.calls_to("chat.postEphemeral")) == 24


def test_secret_server_outage_never_looks_like_cancellations(sandbox, make_relay):
    relay = make_relay()
    relay.ss.retry_seconds = 0.2
    ask_many(sandbox, 2)
    cycle(relay)
    before = len(sandbox.slack.calls)
    sandbox.ss.fail(LISTING, status=503, times=1000)
    cycle(relay, expect_ok=False)
    sandbox.ss.clear_faults()
    sandbox.ss.fail(LISTING, status=200, body=b"{not json", times=1)
    assert "SecretServerBadResponse" in cycle(relay, expect_ok=False).error
    assert len(sandbox.slack.calls) == before
    pending = relay.db.execute("SELECT COUNT(*) FROM access_requests WHERE status = 'Pending'").fetchone()[0]
    assert pending == 2


def test_token_expiry_mid_run_relogs_in_without_losing_the_cycle(sandbox, make_relay):
    relay = make_relay()
    cycle(relay)
    logins = len(sandbox.ss.calls_to(r"/oauth2/token$"))
    sandbox.ss.expire_all_tokens()
    ask_many(sandbox, 1)
    cycle(relay)                      # the same cycle re-logs in and still delivers
    assert len(sandbox.ss.calls_to(r"/oauth2/token$")) == logins + 1
    assert len(sandbox.slack.calls_to("chat.postEphemeral")) == 2


def test_token_expiry_in_the_middle_of_a_cycle(sandbox, make_relay):
    relay = make_relay()
    cycle(relay)
    ask_many(sandbox, 2)
    logins = len(sandbox.ss.calls_to(r"/oauth2/token$"))
    # The listing succeeds, then SS stops honouring the token while reviewers are read.
    sandbox.ss.fail(r"/pending$", status=401, times=1)
    cycle(relay)
    assert len(sandbox.ss.calls_to(r"/oauth2/token$")) == logins + 1
    assert len(sandbox.slack.calls_to("chat.postEphemeral")) == 4


def test_downtime_catch_up(sandbox, make_relay, tmp_path):
    # Test setup: the relay ran once, then stopped.
    first = make_relay(APPROVALS_CONFIRM_TO_REQUESTER="false")   # reviewers' and outcome messages only
    cycle(first)
    first.stop()
    # While it was down: A created and approved, B created and canceled, C still pending.
    a, b, c = ask_many(sandbox, 3)
    sandbox.ss.approve(a, sandbox["bob"].ss_id, "done while you slept",
                       expiration=datetime.now(timezone.utc) + timedelta(hours=2))
    sandbox.ss.cancel(b)
    # Test execution: the relay starts again on the same database.
    from relay.runtime import Relay
    again = Relay(first.cfg)
    try:
        cycle(again)
        cycle(again)
    finally:
        again.stop()
    # Validating: Rita hears about A once; reviewers are asked about C only.
    rita = sandbox.slack.messages(sandbox["rita"].slack_id)
    assert len(rita) == 1 and "done while you slept" in repr(rita[0])
    asked = [c_.args.get("blocks") for c_ in sandbox.slack.calls_to("chat.postEphemeral")]
    assert len(asked) == 2 and all(f"'value': '{c}'" in repr(x) for x in asked)


def test_slack_429_burst_is_paced_and_delivered_once(sandbox, make_relay):
    # Slack allows 600/min with a burst of 2; the relay is (mis)configured to go twice as fast.
    sandbox.slack.set_rate_limit("chat.postEphemeral", 600, burst=2)
    relay = make_relay(SLACK_RATE_LIMITS='{"chat.postEphemeral": 1200}')
    ask_many(sandbox, 6)
    relay.poller.poll_once()
    deadline = datetime.now(timezone.utc) + timedelta(seconds=30)
    while Outbox(relay.db).backlog().get("pending") and datetime.now(timezone.utc) < deadline:
        relay.delivery.deliver_due()
        relay.delivery.wake.wait(0.05)   # wait for Retry-After to pass; no state is shared
    ok = [c for c in sandbox.slack.calls_to("chat.postEphemeral") if c.ok]
    assert sandbox.slack.count_429() >= 1
    keys = Counter((c.args["user"], repr(c.args["blocks"])[-300:]) for c in ok)
    assert len(ok) == 12 and max(keys.values()) == 1
    # After each 429 the next call to that method waited for Retry-After (1 s).
    calls = sandbox.slack.calls_to("chat.postEphemeral")
    for i, c in enumerate(calls[:-1]):
        if c.status == 429:
            assert calls[i + 1].at - c.at >= 0.95


def test_slack_outage_keeps_notifications_until_delivered(sandbox, make_relay):
    relay = make_relay(APPROVALS_CONFIRM_TO_REQUESTER="false")   # reviewers' and outcome messages only
    ask_many(sandbox, 1)
    sandbox.slack.fail("chat.postEphemeral", status=503, times=2)
    cycle(relay)
    assert Outbox(relay.db).backlog() == {"pending": 2}
    later = datetime.now(timezone.utc) + timedelta(minutes=10)
    relay.delivery.clock = lambda: later
    while relay.delivery.deliver_due():
        pass
    assert Outbox(relay.db).backlog() == {"sent": 2}
    assert len([c for c in sandbox.slack.calls_to("chat.postEphemeral") if c.ok]) == 2


def test_permanent_failures_are_dead_lettered_with_the_reason(sandbox, make_relay):
    relay = make_relay()
    sandbox.add_person("dave", display_name="Dave NoSlack", slack=False)
    sandbox.ss.add_to_group(sandbox.groups["approvers"], sandbox["dave"].ss_id)
    ask_many(sandbox, 1)
    sandbox.slack.fail("chat.postEphemeral", error="invalid_blocks", times=1)
    cycle(relay)
    dead = {d["recipient"]: d["reason"] for d in Outbox(relay.db).dead_letters()}
    assert "no Slack user has the e-mail dave@example.com" in dead[sandbox["dave"].ss_id]
    assert "invalid_blocks" in dead.values()
    unmapped = relay.db.execute("SELECT username, reason FROM unmapped_people").fetchall()
    assert unmapped[0][0] == "dave"


def test_mrkdwn_injection_reaches_slack_as_text(sandbox, make_relay):
    relay = make_relay()
    sandbox.ss.create_request(sandbox.secrets["prod-db"], sandbox["rita"].ss_id,
                              comment="<!channel> <https://evil.example|click here> " + "x" * 5000)
    cycle(relay)
    for call in sandbox.slack.calls_to("chat.postEphemeral"):
        sent = repr(call.args["blocks"])
        assert "<!channel>" not in sent and "<https://evil" not in sent
        assert "&lt;!channel&gt;" in sent and "…" in sent


def test_logs_never_contain_passwords_or_tokens(sandbox, make_relay, caplog):
    from relay import logs
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(logs.REDACTOR)
    relay = make_relay()
    relay.ss.retry_seconds = 0.2
    ask_many(sandbox, 2)
    cycle(relay)
    sandbox.ss.expire_all_tokens()
    sandbox.ss.fail(LISTING, status=500, times=1000)
    cycle(relay, expect_ok=False)
    sandbox.slack.fail("chat.postEphemeral", error="invalid_auth", times=1)
    sandbox.ss._faults.clear()
    ask_many(sandbox, 1)
    cycle(relay)
    text = "\n".join(r.getMessage() + " " + repr(vars(r)) for r in caplog.records)
    assert caplog.records, "the flow should have logged something"
    from relay.sandbox import scenario
    for secret in [scenario.RELAY_PASSWORD, scenario.BOT_TOKEN, scenario.SIGNING_SECRET,
                   *sandbox.ss.issued_tokens(), *sandbox.ss.secret_field_values()]:
        assert secret not in text


def test_a_reviewer_group_the_relay_cannot_read_does_not_silence_the_others(sandbox, make_relay):
    # A second approver group for prod-db, which SS will not show the relay account.
    relay = make_relay()
    ask_many(sandbox, 1)
    blocked = sandbox.groups["approvers"]
    sandbox.ss.fail(rf"/api/v1/groups/{blocked}/users$", status=400,
                    body={"errorCode": "API_AccessDenied", "message": "Access denied"}, times=1)
    carol = sandbox.add_person("carol", display_name="Carol Approver")
    sandbox.ss.add_to_group(sandbox.groups["approvers"], carol.ss_id)
    other = sandbox.ss.add_group("Other approvers", [carol.ss_id, sandbox.relay_ss_id])
    rid = sandbox.ss.create_request(sandbox.secrets["wiki-admin"], sandbox["rita"].ss_id, comment="y",
                                    steps=[[blocked, other]])
    result = cycle(relay)
    asked = {c.args["user"] for c in sandbox.slack.calls_to("chat.postEphemeral")
             if f"'value': '{rid}'" in repr(c.args["blocks"])}
    assert carol.slack_id in asked, result
    import json
    seen = json.loads(relay.db.execute("SELECT value FROM relay_state WHERE key = 'unreadable_groups'").fetchone()[0])
    assert list(seen["groups"]) == [str(blocked)]


def test_an_approval_message_that_failed_until_the_request_was_settled_is_not_sent(sandbox, make_relay):
    relay = make_relay()
    (rid,) = ask_many(sandbox, 1)
    sandbox.slack.fail("chat.postEphemeral", status=503, times=None)
    cycle(relay)                                 # both approval messages are waiting to be retried
    sandbox.ss.deny(rid, sandbox["alice"].ss_id, "no")
    relay.poller.poll_once()                     # the request is settled
    sandbox.slack.clear_faults()
    relay.delivery.clock = lambda: datetime.now(timezone.utc) + timedelta(minutes=10)
    while relay.delivery.deliver_due():
        pass
    assert [c for c in sandbox.slack.calls_to("chat.postEphemeral") if c.ok] == []
    assert Outbox(relay.db).backlog().get("superseded") == 2


def test_an_unexpected_error_while_sending_dead_letters_the_row_instead_of_leaving_it_stuck(sandbox, make_relay):
    relay = make_relay(APPROVALS_CONFIRM_TO_REQUESTER="false")   # reviewers' and outcome messages only
    ask_many(sandbox, 1)
    relay.delivery.secret_url = lambda secret_id: 1 / 0     # a bug in building the message
    cycle(relay)
    backlog = Outbox(relay.db).backlog()
    assert backlog == {"dead": 2}
    assert all(d["reason"] == "internal error: ZeroDivisionError" for d in Outbox(relay.db).dead_letters())


def test_catch_up_runs_again_after_failed_polls(sandbox, make_relay):
    relay = make_relay()
    relay.ss.retry_seconds = 0.2
    cycle(relay)
    sandbox.ss.fail(LISTING, status=503, times=1000)
    cycle(relay, expect_ok=False)
    # While polls fail, a request is created and approved in SS.
    (rid,) = ask_many(sandbox, 1)
    sandbox.ss.approve(rid, sandbox["bob"].ss_id, "while polls failed",
                       expiration=datetime.now(timezone.utc) + timedelta(hours=1))
    sandbox.ss.clear_faults()
    cycle(relay)
    (told,) = sandbox.slack.messages(sandbox["rita"].slack_id)
    assert "while polls failed" in repr(told)
