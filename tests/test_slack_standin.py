"""The Slack stand-ins, driven through the real slack_sdk clients.

Every test talks HTTP (or WebSocket) to the stand-in exactly as the relay will:
``WebClient(token=..., base_url=slack.api_url)``, ``WebhookClient(response_url)``
and the builtin ``SocketModeClient``. Named people: Alice (reviewer), Bob (requester).
"""

from __future__ import annotations

import threading

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.webhook import WebhookClient

from relay.sandbox.slack import SlackStandIn
from relay.sandbox.socket_mode import SocketModeStandIn

ALICE = "U0ALICE"
BOB = "U0BOB"


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _people(slack: SlackStandIn) -> None:
    slack.add_user(ALICE, email="alice@example.com", name="alice", real_name="Alice Reviewer")
    slack.add_user(BOB, email="bob@example.com", name="bob", real_name="Bob Requester")


@pytest.fixture
def slack():
    with SlackStandIn() as standin:
        _people(standin)
        yield standin


@pytest.fixture
def client(slack):
    return WebClient(token=slack.bot_token, base_url=slack.api_url, timeout=5)


def _error_of(excinfo) -> str:
    return excinfo.value.response["error"]


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# --------------------------------------------------------------------------- auth


def test_auth_test_answers_like_slack_and_every_response_carries_scopes(slack, client):
    resp = client.auth_test()

    assert resp["ok"] is True
    assert resp["team_id"] == "T0SANDBOX"
    assert resp["user_id"] == "U0BOT" and resp["bot_id"] == "B0BOT"
    headers = {k.lower(): v for k, v in resp.headers.items()}
    assert headers["x-oauth-scopes"] == "chat:write,im:write,im:history,users:read,users:read.email,commands"
    call = slack.wait_for("auth.test")[0]
    assert call.ok and call.status == 200 and "token" not in call.args


def test_wrong_token_is_invalid_auth_and_no_token_is_not_authed(slack):
    wrong = WebClient(token="xoxb-wrong", base_url=slack.api_url, timeout=5)
    with pytest.raises(SlackApiError) as wrong_exc:
        wrong.auth_test()
    anonymous = WebClient(base_url=slack.api_url, timeout=5)
    with pytest.raises(SlackApiError) as anon_exc:
        anonymous.chat_postMessage(channel=ALICE, text="hi")

    assert _error_of(wrong_exc) == "invalid_auth"
    assert wrong_exc.value.response.status_code == 200
    assert _error_of(anon_exc) == "not_authed"
    assert slack.messages(ALICE) == []


def test_revoked_token_and_missing_scope():
    with SlackStandIn(scopes=("chat:write",)) as slack:
        _people(slack)
        client = WebClient(token=slack.bot_token, base_url=slack.api_url, timeout=5)
        with pytest.raises(SlackApiError) as scope_exc:
            client.users_lookupByEmail(email="alice@example.com")
        slack.revoke_token()
        with pytest.raises(SlackApiError) as revoked_exc:
            client.auth_test()

    assert _error_of(scope_exc) == "missing_scope"
    assert scope_exc.value.response["needed"] == "users:read.email"
    assert _error_of(revoked_exc) == "token_revoked"


# --------------------------------------------------------------------------- users


def test_lookup_by_email_and_users_info(client):
    found = client.users_lookupByEmail(email="ALICE@example.com")
    with pytest.raises(SlackApiError) as missing:
        client.users_lookupByEmail(email="nobody@example.com")
    info = client.users_info(user=BOB)
    with pytest.raises(SlackApiError) as unknown:
        client.users_info(user="U0NOBODY")

    assert found["user"]["id"] == ALICE
    assert found["user"]["profile"]["email"] == "alice@example.com"
    assert _error_of(missing) == "users_not_found"
    assert info["user"]["real_name"] == "Bob Requester" and info["user"]["deleted"] is False
    assert _error_of(unknown) == "user_not_found"


def test_users_info_carries_the_profile_email_as_slack_publishes_it(client):
    # users.info -> user.profile.email (with users:read.email); the sign-in check reads it there
    info = client.users_info(user=BOB)
    assert info["user"]["profile"]["email"] == "bob@example.com"
    assert "email" not in info["user"]


# --------------------------------------------------------------------------- messages


def test_dm_by_user_id_lands_in_the_app_dm_and_updates_in_place(slack, client):
    # Test execution: the relay posts Alice's approval card by user id, then decides it.
    card = client.chat_postMessage(channel=ALICE, text="Bob asks for db-prod", blocks=[_section("*db-prod*")])
    second = client.chat_postMessage(channel=ALICE, text="another")
    opened = client.conversations_open(users=ALICE)
    client.chat_update(channel=card["channel"], ts=card["ts"], text="Approved by Alice", blocks=[])

    # Validating: the card was posted in the DM (D id), the ts are ordered, the update replaced it.
    assert card["channel"] == slack.dm_channel(ALICE) == opened["channel"]["id"]
    assert card["channel"].startswith("D")
    assert float(second["ts"]) > float(card["ts"])
    live = slack.messages(ALICE)
    assert [m["text"] for m in live] == ["Approved by Alice", "another"]
    assert live[0]["ts"] == card["ts"] and live[0]["blocks"] == [] and live[0]["edited"]
    assert slack.messages(card["channel"]) == live


def test_update_needs_the_dm_id_and_an_existing_ts(slack, client):
    card = client.chat_postMessage(channel=ALICE, text="card")
    with pytest.raises(SlackApiError) as unknown_ts:
        client.chat_update(channel=card["channel"], ts="1700000000.000001", text="x")
    with pytest.raises(SlackApiError) as by_user_id:
        client.chat_update(channel=ALICE, ts=card["ts"], text="x")

    assert _error_of(unknown_ts) == "message_not_found"
    assert _error_of(by_user_id) == "channel_not_found"
    assert slack.messages(ALICE)[0]["text"] == "card"


def test_unknown_deleted_and_bot_recipients(slack, client):
    slack.add_user("U0GONE", deleted=True)
    with pytest.raises(SlackApiError) as unknown:
        client.chat_postMessage(channel="U0NOBODY", text="hi")
    with pytest.raises(SlackApiError) as gone:
        client.chat_postMessage(channel="U0GONE", text="hi")
    with pytest.raises(SlackApiError) as bot:
        client.chat_postMessage(channel="U0BOT", text="hi")

    assert _error_of(unknown) == "channel_not_found"
    assert _error_of(gone) == "user_disabled"
    assert _error_of(bot) == "cannot_dm_bot"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_delete_and_no_text(slack, client):
    card = client.chat_postMessage(channel=ALICE, text="card")
    client.chat_delete(channel=card["channel"], ts=card["ts"])
    with pytest.raises(SlackApiError) as again:
        client.chat_delete(channel=card["channel"], ts=card["ts"])
    with pytest.raises(SlackApiError) as empty:
        client.chat_postMessage(channel=ALICE, text="")

    assert slack.messages(ALICE) == []
    assert _error_of(again) == "message_not_found"
    assert _error_of(empty) == "no_text"


def test_text_over_40000_is_truncated_with_a_warning(slack, client):
    resp = client.chat_postMessage(channel=ALICE, text="x" * 40_001)

    assert resp["ok"] is True
    assert resp["response_metadata"]["warnings"] == ["message_truncated"]
    assert len(slack.messages(ALICE)[0]["text"]) == 40_000


def test_ephemeral_in_the_app_dm_cannot_be_updated(slack, client):
    dm = slack.dm_channel(ALICE)
    eph = client.chat_postEphemeral(channel=dm, user=ALICE, text="Bob asks for db-prod")
    with pytest.raises(SlackApiError) as not_member:
        client.chat_postEphemeral(channel=dm, user=BOB, text="not yours")
    with pytest.raises(SlackApiError) as update:
        client.chat_update(channel=dm, ts=eph["message_ts"], text="x")

    assert [e["text"] for e in slack.ephemerals(ALICE)] == ["Bob asks for db-prod"]
    assert slack.ephemerals(ALICE)[0]["channel"] == dm
    assert slack.ephemerals(BOB) == []
    assert _error_of(not_member) == "user_not_in_channel"
    assert _error_of(update) == "message_not_found"
    assert slack.messages(ALICE) == []


@pytest.mark.parametrize(
    "blocks, pointer",
    [
        ([_section("s" * 3001)], "/blocks/0/text/text"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/blocks/0/text/text"),
        (
            [{"type": "actions", "elements": [
                {"type": "button", "action_id": "approve", "text": {"type": "plain_text", "text": "b" * 76}}]}],
            "/blocks/0/elements/0/text/text",
        ),
        ([_section("ok")] * 51, "/blocks"),
        ([{"text": {"type": "mrkdwn", "text": "no type"}}], "/blocks/0"),
    ],
    ids=["section-3001", "header-151", "button-76", "51-blocks", "no-type"],
)
def test_block_limits_are_invalid_blocks(slack, client, blocks, pointer):
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=ALICE, text="fallback", blocks=blocks)

    assert exc.value.response.status_code == 200
    assert _error_of(exc) == "invalid_blocks"
    assert pointer in exc.value.response["response_metadata"]["messages"][0]
    assert slack.messages(ALICE) == []


def test_blocks_at_the_limits_are_accepted_also_as_a_form_string(slack, client):
    at_limit = [_section("s" * 3000)] * 50
    client.chat_postMessage(channel=ALICE, text="fallback", blocks=at_limit)
    # form-encoded call with blocks as a JSON string, as older clients send it
    client.api_call(
        "chat.postMessage", http_verb="POST",
        data={"channel": ALICE, "text": "form", "blocks": '[{"type":"divider"}]'},
    )
    with pytest.raises(SlackApiError) as bad_json:
        client.api_call("chat.postMessage", http_verb="POST",
                        data={"channel": ALICE, "text": "form", "blocks": "[{"})

    assert [len(m["blocks"]) for m in slack.messages(ALICE)] == [50, 1]
    assert slack.calls_to("chat.postMessage")[1].args["blocks"] == [{"type": "divider"}]
    assert _error_of(bad_json) == "invalid_blocks_format"


# --------------------------------------------------------------------------- views


def test_home_publish_keeps_last_view_and_rejects_a_stale_hash(slack, client):
    first = client.views_publish(user_id=ALICE, view={"type": "home", "blocks": [_section("v1")]})
    second = client.views_publish(user_id=ALICE, hash=first["view"]["hash"],
                                  view={"type": "home", "blocks": [_section("v2")]})
    with pytest.raises(SlackApiError) as stale:
        client.views_publish(user_id=ALICE, hash=first["view"]["hash"],
                             view={"type": "home", "blocks": [_section("v3")]})
    with pytest.raises(SlackApiError) as too_big:
        client.views_publish(user_id=ALICE, view={"type": "home", "blocks": [_section("x")] * 101})

    assert second["view"]["id"] == first["view"]["id"]
    assert second["view"]["hash"] != first["view"]["hash"]
    assert _error_of(stale) == "hash_conflict"
    assert _error_of(too_big) == "invalid_arguments"
    home = slack.home_view(ALICE)
    assert home["blocks"] == [_section("v2")] and home["hash"] == second["view"]["hash"]
    assert slack.home_view(BOB) is None


def test_trigger_ids_are_single_use_and_expire():
    clock = FakeClock()
    with SlackStandIn(clock=clock) as slack:
        _people(slack)
        client = WebClient(token=slack.bot_token, base_url=slack.api_url, timeout=5)
        modal = {"type": "modal", "title": {"type": "plain_text", "text": "Search secrets"},
                 "blocks": [_section("q")]}

        fresh = slack.new_trigger_id(ALICE)
        opened = client.views_open(trigger_id=fresh, view=modal)
        with pytest.raises(SlackApiError) as reused:
            client.views_open(trigger_id=fresh, view=modal)
        late = slack.new_trigger_id(ALICE)
        clock.advance(3.01)
        with pytest.raises(SlackApiError) as expired:
            client.views_open(trigger_id=late, view=modal)
        with pytest.raises(SlackApiError) as born_expired:
            client.views_open(trigger_id=slack.new_trigger_id(ALICE, ttl=0), view=modal)
        with pytest.raises(SlackApiError) as garbage:
            client.views_open(trigger_id="not-a-trigger", view=modal)

        assert slack.modal(opened["view"]["id"])["title"]["text"] == "Search secrets"
        assert _error_of(reused) == "exchanged_trigger_id"
        assert _error_of(expired) == "expired_trigger_id"
        assert _error_of(born_expired) == "expired_trigger_id"
        assert _error_of(garbage) == "invalid_trigger_id"


def test_modal_update_with_hash_and_push_limit(slack, client):
    def modal(title):
        return {"type": "modal", "title": {"type": "plain_text", "text": title}, "blocks": [_section(title)]}

    root = client.views_open(trigger_id=slack.new_trigger_id(ALICE), view=modal("Search"))["view"]
    updated = client.views_update(view_id=root["id"], hash=root["hash"], view=modal("Results"))["view"]
    with pytest.raises(SlackApiError) as stale:
        client.views_update(view_id=root["id"], hash=root["hash"], view=modal("Again"))
    with pytest.raises(SlackApiError) as unknown:
        client.views_update(view_id="V0NOPE", view=modal("x"))
    client.views_push(trigger_id=slack.new_trigger_id(ALICE, view_id=root["id"]), view=modal("Two"))
    client.views_push(trigger_id=slack.new_trigger_id(ALICE, view_id=root["id"]), view=modal("Three"))
    with pytest.raises(SlackApiError) as fourth:
        client.views_push(trigger_id=slack.new_trigger_id(ALICE, view_id=root["id"]), view=modal("Four"))

    assert updated["id"] == root["id"]
    assert slack.modal(root["id"])["title"]["text"] == "Results"
    assert _error_of(stale) == "hash_conflict"
    assert _error_of(unknown) == "not_found"
    assert _error_of(fourth) == "push_limit_reached"


# --------------------------------------------------------------------------- response_url


def test_response_url_replaces_the_ephemeral_and_allows_five_uses(slack, client):
    dm = slack.dm_channel(ALICE)
    eph = client.chat_postEphemeral(channel=dm, user=ALICE, text="Approve db-prod?")
    url = slack.new_response_url(ALICE, dm, message_ts=eph["message_ts"], ephemeral=True)
    hook = WebhookClient(url, timeout=5)

    first = hook.send(text="Approved by Alice", replace_original=True)
    later = [hook.send(text=f"note {i}") for i in range(4)]
    sixth = hook.send(text="one too many", replace_original=True)

    assert (first.status_code, first.body) == (200, "ok")
    assert [r.status_code for r in later] == [200] * 4
    assert (sixth.status_code, sixth.body) == (404, "used_url")
    texts = [e["text"] for e in slack.ephemerals(ALICE)]
    assert texts == ["Approved by Alice", "note 0", "note 1", "note 2", "note 3"]
    assert slack.ephemerals(ALICE)[0]["ts"] == eph["message_ts"]
    recorded = slack.responses(url)
    assert len(recorded) == 6 and recorded[0]["body"]["replace_original"] is True
    assert [c.status for c in slack.calls_to("response_url")][-1] == 404


def test_response_url_expires_and_delete_original(slack, client):
    dm = slack.dm_channel(ALICE)
    eph = client.chat_postEphemeral(channel=dm, user=ALICE, text="to delete")
    expired = WebhookClient(slack.new_response_url(ALICE, dm, eph["message_ts"], ttl=0), timeout=5)
    live = WebhookClient(slack.new_response_url(ALICE, dm, eph["message_ts"]), timeout=5)

    late = expired.send(text="too late", replace_original=True)
    deleted = live.send_dict({"delete_original": True})
    unknown = WebhookClient(f"{slack.base_url}hooks/nope", timeout=5).send(text="x")

    assert (late.status_code, late.body) == (404, "expired_url")
    assert deleted.status_code == 200
    assert slack.ephemerals(ALICE) == []
    assert (unknown.status_code, unknown.body) == (404, "no_service")


# --------------------------------------------------------------------------- faults and limits


def test_rate_limit_gives_429_with_retry_after_seen_by_slack_sdk():
    clock = FakeClock()
    with SlackStandIn(clock=clock) as slack:
        _people(slack)
        client = WebClient(token=slack.bot_token, base_url=slack.api_url, timeout=5)
        slack.set_rate_limit("chat.postMessage", per_minute=60, burst=2)

        client.chat_postMessage(channel=ALICE, text="1")
        client.chat_postMessage(channel=ALICE, text="2")
        with pytest.raises(SlackApiError) as limited:
            client.chat_postMessage(channel=ALICE, text="3")
        clock.advance(1.0)
        client.chat_postMessage(channel=ALICE, text="4")
        other_method = client.chat_postEphemeral(channel=slack.dm_channel(ALICE), user=ALICE, text="e")

        assert limited.value.response.status_code == 429
        assert _error_of(limited) == "ratelimited"
        assert limited.value.response.headers["Retry-After"] == "1"
        assert slack.count_429() == 1
        assert [m["text"] for m in slack.messages(ALICE)] == ["1", "2", "4"]
        assert other_method["ok"] is True


def test_injected_errors_statuses_and_retry_after(slack, client):
    slack.fail("chat.postMessage", error="channel_not_found")
    slack.fail("chat.postMessage", status=503)
    slack.fail("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=ALICE, text="1")
    with pytest.raises(SlackApiError) as unavailable:
        client.chat_postMessage(channel=ALICE, text="2")
    with pytest.raises(SlackApiError) as limited:
        client.chat_postMessage(channel=ALICE, text="3")
    client.chat_postMessage(channel=ALICE, text="4")

    assert _error_of(err) == "channel_not_found"
    assert unavailable.value.response.status_code == 503
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert [m["text"] for m in slack.messages(ALICE)] == ["4"]
    assert [(c.status, c.error) for c in slack.calls_to("chat.postMessage")] == [
        (200, "channel_not_found"), (503, "internal_error"), (429, "ratelimited"), (200, None)]


def test_wait_for_blocks_until_a_call_from_another_thread(slack, client):
    go = threading.Event()

    def relay_thread():
        go.wait(5)
        client.chat_postMessage(channel=BOB, text="Your request was approved")

    worker = threading.Thread(target=relay_thread)
    worker.start()
    try:
        with pytest.raises(TimeoutError, match="chat.postMessage"):
            slack.wait_for("chat.postMessage", timeout=0.05)
        go.set()
        calls = slack.wait_for("chat.postMessage", predicate=lambda c: c.args["channel"] == BOB, timeout=5)
    finally:
        go.set()
        worker.join(5)

    assert len(calls) == 1 and calls[0].ok
    assert slack.messages(BOB)[0]["text"] == "Your request was approved"


def test_hang_records_the_call_before_it_completes(slack, client):
    release = threading.Event()
    slack.fail("chat.postMessage", hang=release)
    result = {}
    worker = threading.Thread(
        target=lambda: result.setdefault("resp", client.chat_postMessage(channel=ALICE, text="held")))
    worker.start()
    try:
        inside = slack.wait_for("chat.postMessage", in_flight=True, timeout=5)
        assert inside[0].done is False and inside[0].args["text"] == "held"
        assert slack.messages(ALICE) == []
        with pytest.raises(TimeoutError):
            slack.wait_for("chat.postMessage", timeout=0.05)
    finally:
        release.set()
        worker.join(5)

    assert slack.wait_for("chat.postMessage")[0].ok
    assert result["resp"]["ok"] is True
    assert slack.messages(ALICE)[0]["text"] == "held"


# --------------------------------------------------------------------------- Socket Mode


def test_apps_connections_open_needs_the_app_token(slack, client):
    with pytest.raises(SlackApiError) as bot_token:
        client.apps_connections_open(app_token=slack.bot_token)

    assert _error_of(bot_token) == "not_allowed_token_type"


def test_socket_mode_round_trip_ack_disconnect_reconnect(slack):
    with SocketModeStandIn() as sm:
        slack.attach_socket_mode(sm)
        sm_client = SocketModeClient(
            app_token="xapp-1-sandbox",
            web_client=WebClient(base_url=slack.api_url, timeout=5),
            auto_reconnect_enabled=True,
        )
        seen: list[SocketModeRequest] = []

        def on_request(client: SocketModeClient, req: SocketModeRequest) -> None:
            seen.append(req)
            client.send_socket_mode_response(
                SocketModeResponse(envelope_id=req.envelope_id, payload={"echo": req.payload.get("type")}))

        sm_client.socket_mode_request_listeners.append(on_request)
        try:
            sm_client.connect()
            assert sm.wait_for_connection(timeout=5) == 1
            click = {"type": "block_actions", "user": {"id": ALICE},
                     "actions": [{"action_id": "approve", "value": "req_42"}]}

            first = sm.send_interactive(click)
            ack1 = sm.wait_for_ack(first, timeout=5)

            sm.disconnect("refresh_requested")
            sm.wait_for_connection(timeout=5, total=2)
            second = sm.send_events_api({"type": "event_callback", "event": {"type": "app_home_opened",
                                                                               "user": ALICE}})
            ack2 = sm.wait_for_ack(second, timeout=5)
        finally:
            # Closing from the server side first wakes the client's blocking recv;
            # SocketModeClient.close() alone waits out its 3 s socket timeout.
            sm_client.auto_reconnect_enabled = False
            sm.stop()
            sm_client.close()

    assert ack1 == {"envelope_id": first, "payload": {"echo": "block_actions"}}
    assert ack2["envelope_id"] == second
    assert [r.type for r in seen] == ["interactive", "events_api"]
    assert seen[0].payload["actions"][0]["value"] == "req_42"
    assert len(slack.calls_to("apps.connections.open")) >= 2
    assert all(c.ok for c in slack.calls_to("apps.connections.open"))
