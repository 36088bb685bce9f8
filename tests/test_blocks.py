"""Block builders: pure, deterministic, escaped, within Slack's limits."""

from datetime import datetime, timezone

from relay.model import AccessRequest
from relay.slack import blocks

AT = datetime(2026, 11, 28, 10, 42, tzinfo=timezone.utc)


def req(**kw):
    base = dict(id=5, secret_id=1005, secret_name="prod-db", folder_id=10, requester_id=20,
                requester_username="rita", status="Pending", comment="deploy fix", ticket="INC-1")
    base.update(kw)
    return AccessRequest(**base)


def test_mrkdwn_injection_in_a_comment_renders_as_text():
    r = req(comment="<!channel> <https://evil.example|click> & more")
    text, blks = blocks.approval_card(r, {}, secret_url="https://ss/app/#/secrets/1005/general", default_hours=8)
    comment = next(b for b in blks if b["type"] == "section" and "text" in b)["text"]["text"]
    assert "<!channel>" not in comment and "<https://evil" not in comment
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; more" in comment


def test_names_are_escaped_everywhere():
    r = req(secret_name="a<b>", status="Approved", decided_by="<@U1>", decided_at=AT)
    text, blks = blocks.outcome_message(r, {"requester_name": "<!here>"}, secret_url="https://ss/x", default_hours=8)
    flat = repr(blks) + text
    assert "<@U1>" not in flat and "a<b>" not in flat and "&lt;@U1&gt;" in flat


def test_oversize_comment_is_truncated_with_an_ellipsis():
    r = req(comment="x" * 10_000)
    _, blks = blocks.approval_card(r, {}, secret_url="", default_hours=8)
    comment = next(b for b in blks if b["type"] == "section" and "text" in b)["text"]["text"]
    assert comment.endswith(blocks.ELLIPSIS) and len(comment) <= blocks.SECTION_TEXT_LIMIT


def test_truncation_never_cuts_an_escape_in_half():
    cut = blocks.truncate(blocks.escape("a" * 8 + "&&&&"), 12)
    assert cut.endswith(blocks.ELLIPSIS) and not cut[:-1].endswith(("&", "&a", "&am", "&amp"))


def test_approval_card_carries_only_the_request_id_in_its_buttons():
    _, blks = blocks.approval_card(req(), {"folder_name": "DBs", "requester_name": "Rita"},
                                   secret_url="https://ss/s", default_hours=8)
    actions = blks[-1]
    assert actions["type"] == "actions"
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [("approve", "5"), ("deny", "5")]
    fields = " ".join(f["text"] for f in blks[1]["fields"])
    assert "DBs" in fields and "Rita" in fields and "INC-1" in fields and "8 hours" in fields


def test_closed_card_has_no_buttons_and_says_who_decided():
    r = req(status="Approved", decided_by="Alice", decided_at=AT)
    text, blks = blocks.closed_card(r, {}, secret_url="", default_hours=8)
    assert all(b["type"] != "actions" for b in blks)
    assert "Approved by Alice at <!date^" in blks[-1]["elements"][0]["text"]
    assert "2026-11-28 10:42 UTC" in blks[-1]["elements"][0]["text"]


def test_header_is_cut_to_slack_limit():
    _, blks = blocks.approval_card(req(secret_name="n" * 400), {}, secret_url="", default_hours=8)
    assert len(blks[0]["text"]["text"]) <= blocks.HEADER_LIMIT


def test_builders_are_deterministic():
    a = blocks.approval_card(req(), {}, secret_url="u", default_hours=8)
    b = blocks.approval_card(req(), {}, secret_url="u", default_hours=8)
    assert a == b
