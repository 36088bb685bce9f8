"""The Home tab: the pure builder, and publishing it (app_home_opened, after a poll, skips)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from relay.model import AccessRequest
from relay.slack import home
from slack_payloads import home_opened, poll_now, send_event, sign_in, start_relay, wait_until

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)


def req(i: int, **kw) -> AccessRequest:
    base = dict(id=i, secret_id=100 + i, secret_name=f"secret-{i}", folder_id=3, requester_id=7,
                requester_username="rita", status="Pending", comment="", requested_at=T0)
    base.update(kw)
    return AccessRequest(**base)


def item(i: int, **kw) -> home.HomeItem:
    return home.HomeItem(req(i, **kw), {"folder_name": "Databases", "requester_name": "Rita Requester"})


def text(view) -> str:
    return json.dumps(view, ensure_ascii=False)


def test_home_has_the_four_sections_in_order_and_sign_in_at_the_bottom():
    data = home.HomeData(signed_in=False, my_pending=(item(1),), to_review=(item(2),))
    view = home.home_view(data, signin_url="https://relay.example.com/signin?state=abc")
    headers = [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]
    assert headers == ["My Pending Requests", "Approval Requests", "Recent Secrets"]
    mine = next(b for b in view["blocks"] if b.get("block_id") == "mine:1")
    assert mine["accessory"]["action_id"] == "cancel_request" and mine["accessory"]["value"] == "1"
    actions = next(b for b in view["blocks"] if b.get("block_id") == "home:2")
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [("approve", "2"), ("deny", "2")]
    last = view["blocks"][-1]
    assert last["accessory"]["action_id"] == "signin"
    assert last["accessory"]["url"] == "https://relay.example.com/signin?state=abc"


def test_every_row_offers_open_in_secret_server():
    data = home.HomeData(signed_in=False, my_pending=(item(1),), to_review=(item(2),))
    view = home.home_view(data, signin_url="https://relay/signin", request_url=lambda rid, sid:
                          f"https://ss/app/#/secrets/{sid}/general?request={rid}")
    mine = next(b for b in view["blocks"] if b.get("block_id") == "mine:1")
    assert "<https://ss/app/#/secrets/101/general?request=1|Open in Secret Server>" in mine["text"]["text"]
    actions = next(b for b in view["blocks"] if b.get("block_id") == "home:2")
    assert [(e["action_id"], e.get("url")) for e in actions["elements"]][2:] == [
        ("open_in_ss", "https://ss/app/#/secrets/102/general?request=2")]


def test_signed_in_home_offers_log_off():
    view = home.home_view(home.HomeData(signed_in=True, ss_username="alice"), signin_url="unused")
    last = view["blocks"][-1]
    assert last["accessory"]["action_id"] == "logoff" and "*alice*" in last["text"]["text"]
    assert "unused" not in text(view)
    assert "You have no pending requests." in text(view) and "Nothing is waiting for your review." in text(view)


def test_user_text_is_escaped():
    data = home.HomeData(signed_in=True, to_review=(item(1, secret_name="<!channel> & co", comment="<@U1>"),))
    view = home.home_view(data, signin_url="x")
    assert "<!channel>" not in text(view) and "&lt;!channel&gt; &amp; co" in text(view)
    assert "<@U1>" not in text(view)


def test_long_lists_stop_at_100_blocks_with_how_many_more():
    data = home.HomeData(signed_in=True, my_pending=tuple(item(i) for i in range(1, 80)),
                         to_review=tuple(item(i) for i in range(100, 200)), notice="done")
    view = home.home_view(data, signin_url="x", more_url="https://ss.example.com/SecretServer")
    assert len(view["blocks"]) <= home.VIEW_BLOCK_LIMIT
    shown_mine = sum(1 for b in view["blocks"] if str(b.get("block_id", "")).startswith("mine:"))
    shown_review = sum(1 for b in view["blocks"] if str(b.get("block_id", "")).startswith("home:"))
    assert shown_mine > 0 and shown_review > 0
    assert f"…and {79 - shown_mine} more in Secret Server" in text(view)
    assert f"…and {100 - shown_review} more in Secret Server" in text(view)
    assert view["blocks"][-1]["accessory"]["action_id"] == "logoff"     # the bottom always stays


def test_the_view_is_deterministic():
    data = home.HomeData(signed_in=True, my_pending=(item(1),), to_review=(item(2),))
    a = home.home_view(data, signin_url="x")
    b = home.home_view(data, signin_url="x")
    assert home.view_hash(a) == home.view_hash(b)


# ---------------------------------------------------------------------- publishing
def new_request(sb, secret="prod-db") -> int:
    return sb.ss.create_request(sb.secrets[secret], sb["rita"].ss_id, comment="rotate the keys")


def test_app_home_opened_publishes_each_persons_view_and_skips_identical_ones(sandbox, make_relay):
    sb = sandbox
    rid = new_request(sb)
    relay = start_relay(make_relay, sb)
    # Rita (matched by e-mail, never signed in) opens the Home tab
    send_event(relay, home_opened(sb, "rita"))
    call = sb.slack.wait_for("views.publish", lambda c: c.args["user_id"] == sb["rita"].slack_id)[0]
    view = call.args["view"]
    assert f'"block_id": "mine:{rid}"' in text(view)
    assert "/signin?state=" in text(view)                 # signed out: a fresh sign-in link
    assert "approve" not in [e.get("action_id") for b in view["blocks"] for e in b.get("elements", [])]
    # Alice sees it under Approval Requests
    send_event(relay, home_opened(sb, "alice"))
    call = sb.slack.wait_for("views.publish", lambda c: c.args["user_id"] == sb["alice"].slack_id)[0]
    assert f'"block_id": "home:{rid}"' in text(call.args["view"])
    # opening again with nothing changed: no publish
    send_event(relay, home_opened(sb, "alice"))
    assert relay.interactions.wait_idle(timeout=10)
    wait_until(lambda: relay.interactions.home.skipped >= 1, what="a skipped publish")
    assert len(sb.slack.calls_to("views.publish")) == 2


def test_hash_conflict_re_renders_and_publishes(sandbox, make_relay):
    sb = sandbox
    new_request(sb)
    relay = start_relay(make_relay, sb)
    sign_in(relay, sb, "alice")
    sb.slack.wait_for("views.publish")
    env = home_opened(sb, "alice")
    env["event"]["view"] = dict(env["event"]["view"], hash="1.stale")   # Slack's view moved on
    wait_until(lambda: relay.db.execute("SELECT COUNT(*) FROM home_views").fetchone()[0] == 1, what="publish")
    relay.db.execute("DELETE FROM home_views")                          # force a publish
    send_event(relay, env)
    calls = sb.slack.wait_for("views.publish", count=3)
    assert calls[1].error == "hash_conflict" and calls[1].args["hash"] == "1.stale"
    assert calls[2].ok and "hash" not in calls[2].args


def test_after_a_poll_only_the_people_concerned_get_a_new_home(sandbox, make_relay):
    sb = sandbox
    sb.add_person("carl", display_name="Carl Bystander")
    relay = start_relay(make_relay, sb)
    for who in ("rita", "alice", "bob", "carl"):
        send_event(relay, home_opened(sb, who))
    sb.slack.wait_for("views.publish", count=4)
    sb.slack.reset()
    skipped = relay.interactions.home.skipped
    # Rita asks for wiki-admin: Rita, Alice and Bob are concerned; Carl is not.
    rid = new_request(sb, "wiki-admin")
    poll_now(relay)
    calls = sb.slack.wait_for("views.publish", count=3)
    assert relay.interactions.wait_idle(timeout=10)
    assert sorted(c.args["user_id"] for c in sb.slack.calls_to("views.publish")) == sorted(
        sb[w].slack_id for w in ("rita", "alice", "bob"))
    assert all(str(rid) in text(c.args["view"]) for c in calls)
    # a poll with no change publishes nothing
    sb.slack.reset()
    poll_now(relay)
    assert sb.slack.calls_to("views.publish") == []
    assert relay.interactions.home.skipped == skipped
