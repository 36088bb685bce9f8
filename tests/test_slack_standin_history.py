"""The Slack stand-in's message metadata, conversations.history and the new fault kinds,
through slack_sdk's WebClient over real HTTP."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from relay.sandbox.slack import SlackStandIn


@pytest.fixture
def slack():
    with SlackStandIn() as s:
        s.add_user("U0ALICE", email="alice@example.com")
        yield s


def test_history_returns_metadata_only_when_asked_newest_first_in_pages(slack):
    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    sent = [client.chat_postMessage(channel="U0ALICE", text=f"m{i}",
                                    metadata={"event_type": "ssrelay_notification",
                                              "event_payload": {"key": f"1/approved/{i}"}}) for i in range(3)]
    dm = sent[0]["channel"]
    plain = client.conversations_history(channel=dm)
    assert [m["text"] for m in plain["messages"]] == ["m2", "m1", "m0"]
    assert all("metadata" not in m for m in plain["messages"])
    page = client.conversations_history(channel=dm, include_all_metadata=True, limit=2, oldest=sent[0]["ts"])
    assert [m["metadata"]["event_payload"]["key"] for m in page["messages"]] == ["1/approved/2", "1/approved/1"]
    assert page["has_more"] is False         # `oldest` is exclusive unless `inclusive`
    first = client.conversations_history(channel=dm, include_all_metadata=True, limit=2,
                                         oldest=sent[0]["ts"], inclusive=True)
    assert first["has_more"] is True
    rest = client.conversations_history(channel=dm, include_all_metadata=True, limit=2, oldest=sent[0]["ts"],
                                        inclusive=True, cursor=first["response_metadata"]["next_cursor"])
    assert [m["text"] for m in rest["messages"]] == ["m0"]


def test_history_needs_im_history_and_metadata_must_have_an_event_type(slack):
    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    with pytest.raises(SlackApiError) as bad:
        client.chat_postMessage(channel="U0ALICE", text="x", metadata={"event_payload": {}})
    assert bad.value.response["error"] == "invalid_metadata_format"
    slack.scopes = ("chat:write", "im:write")
    dm = slack.dm_channel("U0ALICE")
    with pytest.raises(SlackApiError) as missing:
        client.conversations_history(channel=dm)
    assert missing.value.response["error"] == "missing_scope" and missing.value.response["needed"] == "im:history"


def test_accept_then_reset_posts_the_message_and_never_answers(slack):
    client = WebClient(token=slack.bot_token, base_url=slack.api_url, timeout=5, retry_handlers=[])
    slack.fail("chat.postMessage", reset_after_accept=True)
    with pytest.raises(OSError):
        client.chat_postMessage(channel="U0ALICE", text="hello")
    assert [m["text"] for m in slack.messages("U0ALICE")] == ["hello"]
    (call,) = slack.calls_to("chat.postMessage")
    assert call.ok and not call.answered
