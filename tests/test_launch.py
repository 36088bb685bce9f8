"""Launch, as the person who clicks: one launcher, several, a prompted one, nothing
launchable, and the Launch button on the requester's "approved" message."""

from __future__ import annotations

import pytest

from relay.secrets import LaunchLink, launch_link
from relay.slack import search
from secret_payloads import (click_in_modal, relay_for_secrets, shortcut, submission, submit, text,
                             top_modal, updated)
from slack_payloads import click_home, click_message, home_opened, send, send_event, sign_in, signin_link, \
    local, submit_signin, wait_until
from conftest import cycle

LAUNCH_PATH = r"/api/v1/launchers/secret\Z"
from secret_payloads import no_secret_values  # noqa: F401, E402  (the sweep fixture)

pytestmark = pytest.mark.usefixtures("no_secret_values")


def launcher(lid, name, *, prompted=False, hosts=()):
    return {"launcherId": lid, "launcherName": name, "promptedField": prompted, "restrictedHosts": list(hosts)}


def launches_by(sb, who):
    return [c for c in sb.ss.calls_to(LAUNCH_PATH, "POST") if c.user == who]


def launched(view) -> str:
    """The launch link a handoff modal shows as text (the block after LAUNCH_LINK's)."""
    blocks = view["blocks"]
    i = next(i for i, b in enumerate(blocks) if b.get("block_id") == search.LAUNCH_LINK)
    return blocks[i + 1]["text"]["text"].strip("`")


def approved_message(sb) -> dict:
    """Rita's "approved" message (the relay's delivery thread may be the one sending it)."""
    return wait_until(lambda: next((m for m in sb.slack.messages(sb["rita"].slack_id) if "approved" in m["text"]),
                                   None), what="the approved message")


def add(sb, name, launchers, **kw):
    viewers = [sb[n].ss_id for n in ("rita", "alice", "bob")]
    return sb.ss.add_secret(name, viewers=viewers, launchers=launchers, template_name="Unix Account (SSH)",
                            fields={"username": f"FIELD-USER-{name}", "password": f"FIELD-VALUE-{name}"}, **kw)


def test_one_launcher_launches_at_once_from_the_search_results(sandbox, make_relay):
    sb = sandbox
    sid = add(sb, "jump-host", [launcher(11, "PuTTY")])
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "alice")
    send(relay, shortcut(sb, "alice"))
    search_id = top_modal(sb, "alice")
    submit(relay, submission(sb, "alice", search_id, {(search.SEARCH_BLOCK, search.SEARCH_INPUT): "jump"}))
    updated(sb, search_id, lambda v: f"secret:{sid}" in text(v))
    # Alice clicks Launch in the results: a modal is pushed at once, then the launch lands in it
    send(relay, click_in_modal(sb, "alice", search_id, search.LAUNCH, str(sid)))
    launch_id = top_modal(sb, "alice", method="views.push")
    view = updated(sb, launch_id, lambda v: search.LAUNCH_LINK in text(v))
    # SS's answer is for its launcher app (baseUrl + ssUrl query): offered as text, with the
    # secret's page as the way that works in a browser; no button that would do nothing
    url = launched(view)
    assert url.startswith("sslauncher:///?guid=")
    assert search.LAUNCH_OPEN not in text(view)
    assert relay.cfg.secret_url(sid) in text(view)
    [call] = launches_by(sb, "alice")
    assert call.body == {"secretId": sid, "launcherId": 11}


def test_several_launchers_let_the_user_pick(sandbox, make_relay):
    sb = sandbox
    sid = add(sb, "build-box", [launcher(21, "Remote Desktop"), launcher(22, "SSH")])
    sb.ss.touch_recent(sb["alice"].ss_id, sid)
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "alice")
    send_event(relay, home_opened(sb, "alice"))
    wait_until(lambda: f"recent:{sid}" in text(sb.slack.home_view(sb["alice"].slack_id)), what="recent on Home")
    # Launch from the Home tab's Recent Secrets
    send(relay, click_home(sb, "alice", search.LAUNCH, sid))
    modal_id = top_modal(sb, "alice")
    picker = updated(sb, modal_id, lambda v: search.LAUNCH_PICK in text(v))
    buttons = [e for b in picker["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(e["text"]["text"], e["value"]) for e in buttons] == [("Remote Desktop", f"{sid}:21"), ("SSH", f"{sid}:22")]
    assert launches_by(sb, "alice") == []
    send(relay, click_in_modal(sb, "alice", modal_id, search.LAUNCH_PICK, f"{sid}:22"))
    view = updated(sb, modal_id, lambda v: search.LAUNCH_LINK in text(v))
    assert launched(view).startswith("sslauncher:")
    assert [c.body for c in launches_by(sb, "alice")] == [{"secretId": sid, "launcherId": 22}]
    # a forged pick (a launcher this secret does not have) launches nothing
    send(relay, click_in_modal(sb, "alice", modal_id, search.LAUNCH_PICK, f"{sid}:99"))
    updated(sb, modal_id, lambda v: "no longer available" in text(v))
    assert len(launches_by(sb, "alice")) == 1


def test_a_prompted_launcher_asks_for_the_host(sandbox, make_relay):
    sb = sandbox
    # SS lists restricted hosts as categorized list items (LauncherDetailsV2.restrictedHosts)
    sid = add(sb, "db-shell", [launcher(31, "SSH", prompted=True,
                                        hosts=[{"category": "Database servers", "value": "db1.corp"},
                                               {"category": "Database servers", "value": "db2.corp"}])])
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "alice")
    send(relay, click_home(sb, "alice", search.LAUNCH, sid))
    modal_id = top_modal(sb, "alice")
    prompt = updated(sb, modal_id, lambda v: v.get("callback_id") == search.PROMPT_CALLBACK)
    element = next(b for b in prompt["blocks"] if b.get("block_id") == search.PROMPT_BLOCK)["element"]
    assert element["type"] == "static_select"
    assert [o["value"] for o in element["options"]] == ["db1.corp", "db2.corp"]
    # an empty value is refused in the ack
    ack = submit(relay, submission(sb, "alice", modal_id, {(search.PROMPT_BLOCK, search.PROMPT_INPUT): ""}))
    assert ack["response_action"] == "errors" and search.PROMPT_BLOCK in ack["errors"]
    # a host outside the restricted list (a forged submission) is refused by the relay, not sent
    ack = submit(relay, submission(sb, "alice", modal_id, {(search.PROMPT_BLOCK, search.PROMPT_INPUT):
                                                            ("select", "evil.example")}))
    assert ack["response_action"] == "update"
    updated(sb, modal_id, lambda v: "Pick one of the hosts" in text(v))
    assert launches_by(sb, "alice") == []
    ack = submit(relay, submission(sb, "alice", modal_id, {(search.PROMPT_BLOCK, search.PROMPT_INPUT):
                                                            ("select", "db2.corp")}))
    view = updated(sb, modal_id, lambda v: search.LAUNCH_LINK in text(v))
    assert launched(view)
    assert [c.body for c in launches_by(sb, "alice")] == [
        {"secretId": sid, "launcherId": 31, "promptFieldValue": "db2.corp"}]


def test_nothing_launchable_gives_the_page_and_a_plain_reason(sandbox, make_relay):
    sb = sandbox
    sid = add(sb, "plain-password", [])
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "alice")
    send(relay, click_home(sb, "alice", search.LAUNCH, sid))
    view = updated(sb, top_modal(sb, "alice"), lambda v: "no launcher" in text(v))
    assert "This secret has no launcher in Secret Server. Open it there instead." in text(view)
    assert relay.cfg.secret_url(sid) in text(view)
    # prod-db has a launcher but needs an approved request first: SS says so, plainly
    send(relay, click_home(sb, "alice", search.LAUNCH, sb.secrets["prod-db"]))
    view = updated(sb, top_modal(sb, "alice", opened=2), lambda v: "did not launch" in text(v))
    assert "Approval is required to access this secret." in text(view)
    assert search.REQUEST_ACCESS in text(view) and relay.cfg.secret_url(sb.secrets["prod-db"]) in text(view)
    # a secret Alice cannot see: one sentence, no launcher read for her
    hidden = sb.ss.add_secret("not-yours", viewers=[sb["bob"].ss_id], launchers=[launcher(1, "Web")])
    send(relay, click_home(sb, "alice", search.LAUNCH, hidden))
    view = updated(sb, top_modal(sb, "alice", opened=3), lambda v: "cannot see" in text(v))
    assert "not-yours" not in text(view)


def test_approved_message_has_launch_that_runs_as_the_requester(sandbox, make_relay):
    sb = sandbox
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "rita")
    rid = sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment="incident 42")
    cycle(relay)
    sb.ss.approve(rid, sb["alice"].ss_id, "go ahead")
    cycle(relay)
    msg = approved_message(sb)
    button = next(e for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert (button["action_id"], button["value"]) == (search.LAUNCH, str(sb.secrets["prod-db"]))
    # the relay account never read the secret
    assert [c for c in sb.ss.calls if "/secrets/" in c.path and c.user == "svc-slack-relay"] == []
    send(relay, click_message(sb, "rita", search.LAUNCH, sb.secrets["prod-db"], msg, ephemeral=False))
    view = updated(sb, top_modal(sb, "rita"), lambda v: search.LAUNCH_LINK in text(v))
    assert launched(view)
    assert [c.body for c in launches_by(sb, "rita")] == [{"secretId": sb.secrets["prod-db"], "launcherId": 7}]


def test_no_launch_button_when_the_requester_sees_no_launcher(sandbox, make_relay):
    sb = sandbox
    relay = relay_for_secrets(make_relay, sb)
    sign_in(relay, sb, "rita")
    rid = sb.ss.create_request(sb.secrets["wiki-admin"], sb["rita"].ss_id, comment="docs")
    cycle(relay)
    sb.ss.approve(rid, sb["alice"].ss_id)
    cycle(relay)
    msg = approved_message(sb)
    assert search.LAUNCH not in text(msg["blocks"])


def test_launch_click_without_a_session_signs_in_then_offers_launch_again(sandbox, make_relay):
    sb = sandbox
    sid = add(sb, "jump-host", [launcher(11, "PuTTY")])
    relay = relay_for_secrets(make_relay, sb)
    send(relay, click_home(sb, "alice", search.LAUNCH, sid))
    modal = sb.slack.modal(top_modal(sb, "alice"))
    assert "/signin?state=" in text(modal)
    r = submit_signin(relay, local(relay, signin_link(modal)).split("state=")[1], "alice", sb["alice"].password)
    assert r.status_code == 200
    dm = wait_until(lambda: [m for m in sb.slack.messages(sb["alice"].slack_id) if search.LAUNCH in text(m["blocks"])],
                    what="the Launch button again")
    assert f'"value": "{sid}"' in text(dm[0]["blocks"])
    assert launches_by(sb, "alice") == []


SS = "https://ss.corp/SecretServer"


@pytest.mark.parametrize("answer, link", [
    # baseUrl is the launcher's URL, ssUrl its query string (LaunchedSecretModel)
    ({"baseUrl": "sslauncher:///", "ssUrl": "guid=ab12&url=x", "encodedUrl": "https%3A%2F%2Fss"},
     LaunchLink("sslauncher:///?guid=ab12&url=x")),
    ({"baseUrl": "https://web.corp/launch?x=1", "ssUrl": "guid=ab12"},
     LaunchLink("https://web.corp/launch?x=1&guid=ab12", in_browser=True)),
    ({"baseUrl": "", "ssUrl": "sslauncher:///?guid=ab12"}, LaunchLink("sslauncher:///?guid=ab12")),
    # only SS's own address: opening it launches nothing, so no launch link at all
    ({"baseUrl": SS + "/", "ssUrl": "", "encodedUrl": SS}, LaunchLink("")),
    ({"baseUrl": "https://ss.corp", "ssUrl": ""}, LaunchLink("")),
    ({"baseUrl": SS + "/app/#/dashboard", "ssUrl": None}, LaunchLink("")),
    # encodedUrl is "the url to Secret Server", never a launch link
    ({"baseUrl": None, "ssUrl": "guid=ab12", "encodedUrl": "https://ss.corp/SecretServer"}, LaunchLink("")),
    ({}, LaunchLink("")),
    ({"baseUrl": "sslauncher:///", "ssUrl": "guid=" + "a" * 3000}, LaunchLink("")),
])
def test_launch_link_follows_what_ss_returns(answer, link):
    assert launch_link(answer, SS) == link
