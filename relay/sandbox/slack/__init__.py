"""A loopback stand-in for Slack's Web API, spoken over real HTTP.

The relay's real clients (``slack_sdk.WebClient(base_url=standin.api_url)``,
``slack_sdk.webhook.WebhookClient(response_url)``, the Socket Mode client via
``apps.connections.open``) talk to it exactly as they talk to Slack: same
methods, same JSON shapes, same error strings, same HTTP statuses (200 with
``ok: false`` for API errors, 429 + ``Retry-After`` for rate limits).

Facts come from Slack's published documentation: the Web API method pages
(https://docs.slack.dev/reference/methods, also as JSON in slack-ruby/slack-api-ref),
Block Kit (https://docs.slack.dev/reference/block-kit/blocks) and response URLs
(https://docs.slack.dev/interactivity/handling-user-interaction).
Where Slack's behaviour is not documented, the choice is named ``[U]`` in a
comment.

Usage::

    with SlackStandIn() as slack:
        slack.add_user("U0ALICE", email="alice@example.com", real_name="Alice")
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        client.chat_postMessage(channel="U0ALICE", text="hi")
        slack.wait_for("chat.postMessage")
        assert slack.messages("U0ALICE")[0]["text"] == "hi"

Everything is guarded by one lock; test threads and the server's request
threads may call any method at any time. Tokens are never logged or recorded.

Layout: ``limits`` (documented limits, identities, scopes), ``state`` (data and
locks), ``faults`` (the fault injection API), ``blocks`` (Block Kit validation),
``methods`` (one module per method family), ``http`` (the request handler),
``standin`` (``SlackStandIn``, which ties them together).
"""

from __future__ import annotations

from .faults import DropConnection
from .limits import (
    ACTION_ID_MAX,
    ACTIONS_ELEMENTS_MAX,
    APP_ID,
    BLOCK_ID_MAX,
    BOT_ID,
    BOT_USER_ID,
    BUTTON_TEXT_MAX,
    BUTTON_VALUE_MAX,
    CALLBACK_ID_MAX,
    CONTEXT_ELEMENTS_MAX,
    HEADER_TEXT_MAX,
    MESSAGE_MAX_BLOCKS,
    METHOD_SCOPES,
    PRIVATE_METADATA_MAX,
    PUSH_LIMIT,
    RESPONSE_URL_MAX_USES,
    RESPONSE_URL_TTL,
    SECTION_FIELD_TEXT_MAX,
    SECTION_FIELDS_MAX,
    SECTION_TEXT_MAX,
    TEXT_TRUNCATE_AT,
    TRIGGER_TTL,
    VIEW_MAX_BLOCKS,
    VIEW_MAX_BYTES,
    VIEW_TITLE_MAX,
)
from .methods.conversations import HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT
from .standin import SlackStandIn
from .state import Call

__all__ = [
    "ACTION_ID_MAX",
    "ACTIONS_ELEMENTS_MAX",
    "APP_ID",
    "BLOCK_ID_MAX",
    "BOT_ID",
    "BOT_USER_ID",
    "BUTTON_TEXT_MAX",
    "BUTTON_VALUE_MAX",
    "CALLBACK_ID_MAX",
    "CONTEXT_ELEMENTS_MAX",
    "Call",
    "DropConnection",
    "HEADER_TEXT_MAX",
    "HISTORY_DEFAULT_LIMIT",
    "HISTORY_MAX_LIMIT",
    "MESSAGE_MAX_BLOCKS",
    "METHOD_SCOPES",
    "PRIVATE_METADATA_MAX",
    "PUSH_LIMIT",
    "RESPONSE_URL_MAX_USES",
    "RESPONSE_URL_TTL",
    "SECTION_FIELD_TEXT_MAX",
    "SECTION_FIELDS_MAX",
    "SECTION_TEXT_MAX",
    "SlackStandIn",
    "TEXT_TRUNCATE_AT",
    "TRIGGER_TTL",
    "VIEW_MAX_BLOCKS",
    "VIEW_MAX_BYTES",
    "VIEW_TITLE_MAX",
]
