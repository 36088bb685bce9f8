"""`ssrelay demo --preview`: the page renders each person's Slack from the Block Kit the relay
really sent, and its buttons send signed interactions the relay acts on. Driven in a real
browser: Debian's headless Chromium through Playwright (`.ci/run` installs `chromium`)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from waiting import wait_until
from relay.sandbox.preview import Preview, mrkdwn, render_blocks

ROOT = Path(__file__).parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_page_requests_before_start_fail_with_a_clear_error():
    preview = Preview(port=0)
    with pytest.raises(RuntimeError, match="preview not started"):
        preview.state()
    with pytest.raises(RuntimeError, match="preview not started"):
        preview.ss_action("cancel", {"id": 1})
    with pytest.raises(RuntimeError, match="preview not started"):
        preview.click({"person": "rita", "surface": "home"})


# ---------------------------------------------------------------------- rendering (pure)
def test_mrkdwn_escapes_everything_it_does_not_understand():
    html = mrkdwn('*Bold* _it_ <https://ss.example/x?a=1&amp;b=2|prod-db> <!date^1700000000^{date}|Nov 14> '
                  '&lt;script&gt;alert(1)&lt;/script&gt; <javascript:alert(1)|click> :white_check_mark:\n> quoted')
    assert "<b>Bold</b>" in html and "<i>it</i>" in html
    assert '<a href="https://ss.example/x?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">prod-db</a>' in html
    assert "<time>Nov 14</time>" in html and "✅" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "javascript:" not in html.replace("javascript:alert(1)|click", "") or 'href="javascript' not in html
    assert 'href="javascript' not in html
    assert '<span class="quote">quoted</span>' in html


def test_buttons_carry_what_the_click_needs_and_nothing_unescaped():
    blocks = [{"type": "actions", "block_id": "request:7", "elements": [
        {"type": "button", "action_id": "approve", "value": "7", "style": "primary",
         "text": {"type": "plain_text", "text": "Approve <b>now</b>"}},
        {"type": "button", "action_id": "signin", "url": "https://relay.example/signin?state=a\"b",
         "text": {"type": "plain_text", "text": "Sign in"}}]}]
    html = render_blocks(blocks, {"person": "alice", "surface": "message", "channel": "D1", "ts": "1.2"})
    assert "Approve &lt;b&gt;now&lt;/b&gt;" in html
    click = json.loads(re.search(r'data-click="([^"]+)"', html).group(1).replace("&quot;", '"'))
    assert click == {"person": "alice", "surface": "message", "channel": "D1", "ts": "1.2",
                     "block_id": "request:7", "action_id": "approve", "value": "7"}
    assert 'href="https://relay.example/signin?state=a&quot;b"' in html


# ---------------------------------------------------------------------- the page server
@pytest.fixture(scope="module")
def preview():
    p = Preview(port=0, out=open(os.devnull, "w")).start()
    yield p
    p.stop()


def test_state_shows_everyone_signed_in_with_their_cards(preview):
    s = requests.get(preview.url + "api/state", timeout=10).json()
    people = {p["name"]: p for p in s["people"]}
    assert all(p["signed_in"] for p in people.values())
    assert people["alice"]["messages"].count('data-action="approve"') == 2
    assert "Signed in to Secret Server as" in people["bob"]["home"]
    assert [r["status"] for r in s["requests"]] == ["Pending", "Pending"]


def test_post_endpoints_refuse_other_hosts_and_non_json(preview):
    port = preview.server.server_address[1]
    form = requests.post(f"http://127.0.0.1:{port}/api/ss/cancel", data={"id": "1"}, timeout=10)
    assert form.status_code == 403
    rebound = requests.post(f"http://127.0.0.1:{port}/api/ss/cancel", json={"id": 1},
                            headers={"Host": "evil.example"}, timeout=10)
    assert rebound.status_code == 403


def test_clicking_approve_in_the_browser_tells_the_requester(preview):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`apt-get update && apt-get install -y "
                    "chromium`; .ci/run does this). The preview's browser test does not skip.")
    from playwright.sync_api import expect, sync_playwright
    sb = preview.sb
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(preview.url)
            alice = page.locator('section[data-person="alice"]')
            rita = page.locator('section[data-person="rita"]')
            approve = alice.locator('.msg:has-text("Access request: prod-db") button[data-action="approve"]')
            expect(approve).to_be_visible(timeout=15_000)
            # Alice clicks Approve on her card for rita's prod-db request.
            approve.click()
            expect(rita.locator(".messages")).to_contain_text("Your request for prod-db was approved by Alice Approver",
                                                              timeout=20_000)
            # The relay acted in Secret Server as Alice, and her card lost its buttons.
            rid = next(r["id"] for r in preview.requests_view() if r["secret"] == "prod-db")
            assert sb.ss.get_request(rid)["status"] == "Approved"
            expect(alice.locator('.msg:has-text("Access request: prod-db") button[data-action="approve"]')) \
                .to_have_count(0, timeout=10_000)
            expect(page.locator(f'tr[data-request="{rid}"] .status')).to_contain_text("Approved")
            (ROOT / "artifacts").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "artifacts" / "preview.png"), full_page=True)
        finally:
            browser.close()
    assert (ROOT / "artifacts" / "preview.png").stat().st_size > 10_000


def test_panel_creates_a_request_and_the_approvers_get_cards(preview):
    sb = preview.sb
    before = len(sb.slack.messages(sb["bob"].slack_id))
    r = requests.post(preview.url + "api/ss/create", json={"requester": "rita", "secret": "wiki-admin",
                                                           "comment": "panel"}, timeout=10)
    rid = r.json()["id"]
    wait_until(lambda: len(sb.slack.messages(sb["bob"].slack_id)) > before, 20, "bob's card for the new request")
    assert requests.post(preview.url + "api/ss/cancel", json={"id": rid}, timeout=10).status_code == 200
    assert sb.ss.get_request(rid)["status"] == "Canceled"


def test_a_channel_card_decided_in_secret_servers_ui_is_edited_in_place_with_one_reply(preview):
    # Test setup: #db-team holds a card (with Approve / Deny) for rita's pending wiki-admin request.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does this).")
    from playwright.sync_api import expect, sync_playwright
    sb = preview.sb
    rid = next(r["id"] for r in preview.requests_view() if r["secret"] == "wiki-admin" and r["status"] == "Pending")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(preview.url)
            team = page.locator('section[data-channel="C0DBTEAM"]')
            card = team.locator('.msg.channel:has-text("Access request: wiki-admin"):has(button[data-action="approve"])')
            expect(card).to_have_count(1, timeout=15_000)
            ts = card.get_attribute("data-ts")
            cards_before = len(sb.slack.messages("C0DBTEAM")) - sum(
                len(sb.slack.thread("C0DBTEAM", m["ts"])) for m in sb.slack.messages("C0DBTEAM"))
            # Test execution: bob approves in the Secret Server panel (the stand-in's decision API).
            page.locator(f'tr[data-request="{rid}"] button[data-ss="approve"][data-by="bob"]').click()
            # Validating: the same card (same ts) lost its buttons; its thread has one reply.
            same = team.locator(f'.msg.channel[data-ts="{ts}"]')
            expect(same.locator('button[data-action="approve"]')).to_have_count(0, timeout=20_000)
            expect(same.locator(".edited")).to_have_count(1)
            expect(same.locator(".thread .reply")).to_have_count(1)
            expect(same.locator(".thread")).to_contain_text("Bob Approver approved")
            expect(team.locator(".msg.channel")).to_have_count(cards_before)   # no new card
        finally:
            browser.close()
    (card_msg,) = [m for m in sb.slack.messages("C0DBTEAM") if m["ts"] == ts]
    assert card_msg["edited"] and len(sb.slack.thread("C0DBTEAM", ts)) == 1


def test_fast_forward_moves_the_relays_clock_to_the_next_reminder(preview):
    sb = preview.sb
    rid = requests.post(preview.url + "api/ss/create", json={"requester": "rita", "secret": "prod-db",
                                                             "comment": "reminders"}, timeout=10).json()["id"]
    wait_until(lambda: any("reminders" in json.dumps(m["blocks"]) for m in sb.slack.messages("C0DBTEAM")),
               20, "the channel card")
    (card,) = [m for m in sb.slack.messages("C0DBTEAM") if "reminders" in json.dumps(m["blocks"])]
    due = preview.relay.db.execute("SELECT next_reminder_at FROM reminders WHERE request_id = ?",
                                   [rid]).fetchone()[0]
    r = requests.post(preview.url + "api/time/forward", json={}, timeout=10)
    assert r.status_code == 200 and r.json()["ahead_seconds"] > 60
    assert preview.clock().isoformat() > due
    wait_until(lambda: sb.slack.thread("C0DBTEAM", card["ts"]), 20, "the reminder in the card's thread")
    (reply,) = sb.slack.thread("C0DBTEAM", card["ts"])
    assert reply["text"].startswith(":alarm_clock: Reminder: still waiting for a review")
    assert "min ahead" in requests.get(preview.url, timeout=10).text or \
        requests.get(preview.url + "api/state", timeout=10).json()["ahead_minutes"] > 1
    requests.post(preview.url + "api/ss/cancel", json={"id": rid}, timeout=10)


# ---------------------------------------------------------------------- the command
def test_demo_preview_command_prints_progress_and_the_link(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSRELAY_")}
    proc = subprocess.Popen([sys.executable, "-m", "relay", "demo", "--preview", "--port", "0"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = []
        deadline = time.monotonic() + 60
        while not any(line.startswith("Open http://") for line in out):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(out) + proc.stderr.read()
            out.append(proc.stdout.readline())
        url = re.search(r"Open (http://127\.0\.0\.1:\d+/)", "".join(out)).group(1)
        assert "[4/6] signing everyone in" in "".join(out)
        assert requests.get(url + "api/state", timeout=10).status_code == 200
        assert "<title>ssrelay preview</title>" in requests.get(url, timeout=10).text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
