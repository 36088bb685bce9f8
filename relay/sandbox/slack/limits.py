"""Slack's documented limits, the sandbox workspace's identities and each method's bot scope."""

# Limits from Slack's method pages (https://docs.slack.dev/reference/methods/chat.postMessage, views.open ...),
# Block Kit (https://docs.slack.dev/reference/block-kit/blocks) and response URLs / triggers
# (https://docs.slack.dev/interactivity/handling-user-interaction).
TEXT_TRUNCATE_AT = 40_000  # chat.postMessage: longer text is truncated, warning message_truncated
MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
ACTION_ID_MAX = 255
BLOCK_ID_MAX = 255
ACTIONS_ELEMENTS_MAX = 25
CONTEXT_ELEMENTS_MAX = 10
VIEW_TITLE_MAX = 24
PRIVATE_METADATA_MAX = 3000
CALLBACK_ID_MAX = 255
VIEW_MAX_BYTES = 250 * 1024
TRIGGER_TTL = 3.0  # "expire in three seconds", single use
RESPONSE_URL_TTL = 30 * 60.0  # "up to 5 times within 30 minutes"
RESPONSE_URL_MAX_USES = 5
PUSH_LIMIT = 3  # views.push: "Currently the limit is 3"

BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0SANDBOX"

# Bot-token scope each method needs (the method's page, https://docs.slack.dev/reference/methods/<method>). Methods not listed need none.
METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "conversations.open": "im:write",
    "conversations.history": "im:history",  # for a DM; channels:history / groups:history otherwise
    "conversations.replies": "im:history",  # likewise
    "users.info": "users:read",
    "users.lookupByEmail": "users:read.email",
    # conversations.info needs the read scope of the channel's type (checked in the method).
}
