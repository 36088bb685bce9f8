"""Search secrets (the `secretsearch` shortcut) and the Home tab's Recent Secrets, as stories:
a person in Slack, the relay over real HTTP, the SS and Slack stand-ins."""

from __future__ import annotations

import threading

import pytest

from relay.slack import home, search
from relay.secrets import SEARCH_MAX_CHARS
from relay.model import Secret
from secret_payloads import relay_for_secrets, shortcut, submission, submit, text, top_modal, updated
from slack_payloads import click_home, home_opened, send, send_event, sign_in, wait_until

SECRETS_PATH = r"/api/v[12]/secrets\Z"
from secret_payloads import no_secret_values  # noqa: F401, E402  (the sweep fixture)

pytestmark = pytest.mark.usefixtures("no_secret_values")


def searched_as(sb, who):
    return [c for c in sb.ss.calls_to(SECRETS_PATH, "GET") if c.user == who]


def search_story(sb, relay, who: str, typed: str) -> dict:
    """`who` opens the shortcut, types `typed`, submits; the modal after the results land."""
    assert send(relay, shortcut(sb, who)).status_code == 200
    view_id = top_modal(sb, who)
    ack = submit(relay, submission(sb, who, view_id, {(search.SEARCH_BLOCK, search.SEARCH_INPUT): typed}))
    assert ack["response_action"] == "update" and "Searching" in text(ack["view"])
    return updated(sb, view_id)


# ---------------------------------------------------------------------- search
def test_search_shows_at_most_three_and_only_what_the_user_can_see(sandbox, make_relay):
    sb = sandbox
    # Test setup: five "payroll" secrets; Alice can see four of them, the fifth is Bob's alone
    alice, bob = sb["alice"].ss_id, sb["bob"].ss_id
    folder = sb.ss.add_folder("Finance", path="\\Finance")
    ids = [sb.ss.add_secret(f"payroll-{n}", folder_id=folder, viewers=[alice, bob], template_name="Web Password",
                            requires_approval=(n == 2), fields={"password": f"FIELD-VALUE-payroll-{n}"},
                            launchers=[{"launcherId": 3, "launcherName": "Web", "promptedField": False,
                                        "restrictedHosts": []}] if n == 1 else [])
           for n in (1, 2, 3, 4)]
    hidden = sb.ss.add_secret("payroll-bobs-only", folder_id=folder, viewers=[bob],
                              fields={"password": "FIELD-VALUE-bobs-only"})
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "alice")
    # Test execution
    modal = search_story(sb, relay, "alice", "payroll")
    # Validating: three results, Alice's own, each a link to its page; Launch / Request access
    shown = [b["block_id"] for b in modal["blocks"] if str(b.get("block_id", "")).startswith("secret:")]
    assert shown == [f"secret:{i}" for i in ids[:3]]
    assert "payroll-bobs-only" not in text(modal) and f"secrets/{hidden}/" not in text(modal)
    assert relay.cfg.secret_url(ids[0]) in text(modal)
    first = next(b for b in modal["blocks"] if b.get("block_id") == f"secret_actions:{ids[0]}")
    assert [(e["action_id"], e["value"]) for e in first["elements"]] == [("launch_secret", str(ids[0]))]
    second = next(b for b in modal["blocks"] if b.get("block_id") == f"secret_actions:{ids[1]}")
    assert [e["action_id"] for e in second["elements"]] == ["request_access"]
    assert "Needs approval" in text(modal) and "\\\\Finance" in text(modal) and "Web Password" in text(modal)
    # SS was asked as Alice, with the filters
    call = searched_as(sb, "alice")[-1]
    assert call.query["filter.searchText"] == "payroll" and call.query["filter.includeRestricted"] == "true"
    assert call.query["take"] == "3"


def test_no_match_says_so(sandbox, make_relay):
    sb = sandbox
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "alice")
    modal = search_story(sb, relay, "alice", "nothing-like-this")
    assert "No secret you can see in Secret Server matches" in text(modal)
    assert not [b for b in modal["blocks"] if str(b.get("block_id", "")).startswith("secret:")]


def test_v1_absent_falls_back_to_v2(sandbox, make_relay):
    sb = sandbox
    sb.ss.v1_secrets_enabled = False
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "alice")
    modal = search_story(sb, relay, "alice", "prod")
    assert f"secret:{sb.secrets['prod-db']}" in text(modal)
    assert [c.path for c in searched_as(sb, "alice")] == ["/api/v1/secrets", "/api/v2/secrets"]


def test_ss_down_is_a_sentence_not_a_stack_trace(sandbox, make_relay):
    sb = sandbox
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "alice")
    sb.ss.fail(SECRETS_PATH, status=500, times=1000)
    modal = search_story(sb, relay, "alice", "prod")
    shown = text(modal["blocks"])
    assert "Secret Server could not be reached just now. Try again in a minute." in shown
    for leak in ("Traceback", "Exception", "stackTrace", "/api/v1", "500", "server error"):
        assert leak not in shown


def test_unsigned_user_gets_the_sign_in_link_in_the_modal(sandbox, make_relay):
    sb = sandbox
    relay = relay_for_secrets(make_relay, sb)
    sb.ss.reset_calls()
    assert send(relay, shortcut(sb, "rita")).status_code == 200
    modal = sb.slack.modal(top_modal(sb, "rita"))
    assert "/signin?state=" in text(modal)
    assert not [b for b in modal["blocks"] if b["type"] == "input"]
    assert [c for c in sb.ss.calls if c.user == "rita"] == []


def test_input_is_validated_in_the_ack(sandbox, make_relay):
    sb = sandbox
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "alice")
    send(relay, shortcut(sb, "alice"))
    view_id = top_modal(sb, "alice")
    sb.ss.reset_calls()
    for typed in ("", "   ", "x" * (SEARCH_MAX_CHARS + 1)):
        ack = submit(relay, submission(sb, "alice", view_id, {(search.SEARCH_BLOCK, search.SEARCH_INPUT): typed}))
        assert ack["response_action"] == "errors" and set(ack["errors"]) == {search.SEARCH_BLOCK}
    assert searched_as(sb, "alice") == []
    ok = submit(relay, submission(sb, "alice", view_id, {(search.SEARCH_BLOCK, search.SEARCH_INPUT): "x" * 200}))
    assert ok["response_action"] == "update"


def test_views_open_comes_before_any_secret_server_call(sandbox, make_relay):
    sb = sandbox
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "alice")
    assert relay.interactions.wait_idle(timeout=10)   # the sign-in's Home publish ran
    # Secret Server hangs on every call from now on
    release = threading.Event()
    sb.ss.fail(r".", hang=release, times=1000)
    try:
        before = len(sb.ss.calls)
        assert send(relay, shortcut(sb, "alice", ttl=1.5)).status_code == 200
        opened = sb.slack.wait_for("views.open", timeout=3)[0]
        assert opened.ok, opened.error                  # within the trigger window, SS untouched
        assert len(sb.ss.calls) == before
        # the submission is acked ("Searching…") while SS is still hanging
        view_id = top_modal(sb, "alice")
        ack = submit(relay, submission(sb, "alice", view_id, {(search.SEARCH_BLOCK, search.SEARCH_INPUT): "prod"}))
        assert ack["response_action"] == "update"
        sb.ss.wait_for(lambda c: c.user == "alice" and "/secrets" in c.path)
        assert sb.slack.calls_to("views.update") == []
    finally:
        release.set()
    modal = updated(sb, view_id)
    assert f"secret:{sb.secrets['prod-db']}" in text(modal)


# ---------------------------------------------------------------------- recent secrets (Home tab)
def recent_calls(sb, who):
    return [c for c in searched_as(sb, who) if c.query.get("filter.scope") == "Recent"]


def home_of(sb, who, count=1):
    uid = sb[who].slack_id
    return sb.slack.wait_for("views.publish", lambda c: c.args["user_id"] == uid, count=count)[count - 1].args["view"]


def test_recent_secrets_are_links_with_launch_and_are_cached(sandbox, make_relay):
    sb = sandbox
    alice = sb["alice"].ss_id
    sb.ss.touch_recent(alice, sb.secrets["wiki-admin"])
    sb.ss.touch_recent(alice, sb.secrets["prod-db"])
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "alice")
    home_of(sb, "alice")                                 # published at sign-in (no SS read there)
    send_event(relay, home_opened(sb, "alice"))
    view = home_of(sb, "alice", count=2)
    prod = next(b for b in view["blocks"] if b.get("block_id") == f"recent:{sb.secrets['prod-db']}")
    assert f"<{relay.cfg.secret_url(sb.secrets['prod-db'])}|prod-db>" in prod["text"]["text"]
    assert prod["accessory"] == search.launch_button(sb.secrets["prod-db"])
    wiki = next(b for b in view["blocks"] if b.get("block_id") == f"recent:{sb.secrets['wiki-admin']}")
    assert "accessory" not in wiki                       # no launcher: no Launch
    # a burst of app_home_opened: SS is asked once
    for _ in range(5):
        send_event(relay, home_opened(sb, "alice"))
    wait_until(lambda: relay.interactions.home.skipped >= 5, what="skipped publishes")
    assert len(recent_calls(sb, "alice")) == 1
    # after the TTL it is read again
    relay.interactions.secrets.recent_ttl = 0
    send_event(relay, home_opened(sb, "alice"))
    wait_until(lambda: len(recent_calls(sb, "alice")) == 2, what="a fresh read")


def test_recent_secrets_without_a_live_session_ask_to_sign_in(sandbox, make_relay):
    sb = sandbox
    sb.ss.touch_recent(sb["alice"].ss_id, sb.secrets["prod-db"])
    relay = relay_for_secrets(make_relay, sb)
    # never signed in
    send_event(relay, home_opened(sb, "rita"))
    assert "Sign in to see your recent secrets." in text(home_of(sb, "rita"))
    # signed in, then the session lapses in SS (access and refresh tokens gone)
    sign_in(relay, sb, "alice")
    home_of(sb, "alice")
    with sb.ss.world.lock:
        sb.ss.world.tokens.clear()
        sb.ss.world.refresh_tokens.clear()
    send_event(relay, home_opened(sb, "alice"))
    view = home_of(sb, "alice", count=2)
    assert "Sign in to see your recent secrets." in text(view) and "prod-db" not in text(view)
    assert view["blocks"][-1]["accessory"]["action_id"] == "signin"
    assert not relay.interactions.sessions.has_session(sb["alice"].slack_id)


def test_log_off_clears_the_cache(sandbox, make_relay):
    sb = sandbox
    sb.ss.touch_recent(sb["alice"].ss_id, sb.secrets["prod-db"])
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "alice")
    home_of(sb, "alice")
    send_event(relay, home_opened(sb, "alice"))
    assert "prod-db" in text(home_of(sb, "alice", count=2))
    assert len(recent_calls(sb, "alice")) == 1
    # Alice logs off from the Home tab
    send(relay, click_home(sb, "alice", "logoff", 0))
    view = home_of(sb, "alice", count=3)
    assert "prod-db" not in text(view) and "Sign in to see your recent secrets." in text(view)
    assert relay.interactions.secrets._recent == {}
    # signing in again within the TTL reads SS again (the old list is not reused)
    sign_in(relay, sb, "alice")
    home_of(sb, "alice", count=4)
    send_event(relay, home_opened(sb, "alice"))
    wait_until(lambda: len(recent_calls(sb, "alice")) == 2, what="a fresh read after sign-in")


# ---------------------------------------------------------------------- pure builders
def test_recent_section_is_deterministic_and_escaped():
    s = Secret(id=5, name="<!here> db", folder_path="\\Ops", template_name="Unix", has_launcher=True)
    a = home.home_view(home.HomeData(signed_in=True, recent=(s,)), signin_url="x", secret_url=lambda i: f"https://ss/{i}")
    b = home.home_view(home.HomeData(signed_in=True, recent=(s,)), signin_url="x", secret_url=lambda i: f"https://ss/{i}")
    assert home.view_hash(a) == home.view_hash(b)
    assert "<!here>" not in text(a) and "&lt;!here&gt; db" in text(a)
    assert "<https://ss/5|&lt;!here&gt; db>" in text(a)
