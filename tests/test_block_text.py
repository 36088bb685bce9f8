"""The text helpers under every builder: escaping, cutting at Slack's limits, links and dates."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from relay.model import AccessRequest
from relay.slack import blocks
from relay.slack.blocks import (
    ELLIPSIS,
    escape,
    link,
    plain,
    safe,
    state_line,
    truncate,
    when,
    window,
)

AT = datetime(2026, 11, 28, 10, 42, tzinfo=UTC)
AT_TOKEN = "<!date^1795862520^{date_short_pretty} {time}|2026-11-28 10:42 UTC>"


# -- escape ------------------------------------------------------------------------------------

def test_escape_turns_the_three_control_characters_into_entities():
    assert escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert escape("<!channel> <@U1> <#C1> <https://x|y>") == (
        "&lt;!channel&gt; &lt;@U1&gt; &lt;#C1&gt; &lt;https://x|y&gt;")
    assert escape("&amp;") == "&amp;amp;"            # what someone typed, shown as typed
    assert escape(None) == "" and escape("") == "" and escape(0) == "" and escape(42) == "42"
    assert escape("*bold* _it_ ~s~ `c`") == "*bold* _it_ ~s~ `c`"   # formatting is not a control character


# -- truncate ----------------------------------------------------------------------------------

def test_truncate_keeps_text_of_exactly_the_limit():
    assert truncate("a" * 10, 10) == "a" * 10
    assert truncate("", 0) == ""


def test_truncate_one_over_the_limit_ends_with_the_ellipsis_within_the_limit():
    assert truncate("a" * 11, 10) == "a" * 9 + ELLIPSIS
    assert truncate("abcdefg", 5) == "abcd" + ELLIPSIS
    assert truncate("ab", 1) == ELLIPSIS


@pytest.mark.parametrize("text, limit, expected", [
    ("aaaaaa&amp;bc", 8, "aaaaaa" + ELLIPSIS),        # cut after "&"
    ("aaaaaa&amp;bc", 9, "aaaaaa" + ELLIPSIS),        # after "&a"
    ("aaaaaa&amp;bc", 10, "aaaaaa" + ELLIPSIS),       # after "&am"
    ("aaaaaa&amp;bc", 11, "aaaaaa" + ELLIPSIS),       # after "&amp"
    ("aaaaaa&amp;bc", 12, "aaaaaa&amp;" + ELLIPSIS),  # the whole entity fits
    ("aaaaaa&amp;bc", 13, "aaaaaa&amp;bc"),           # no cut at all
    ("aa&lt;&gt;bbbb", 9, "aa&lt;" + ELLIPSIS),       # second entity cut after "&g"
    ("a&amp;&amp;&amp;", 10, "a&amp;" + ELLIPSIS),
])
def test_truncate_never_cuts_an_escape_in_half(text, limit, expected):
    assert truncate(text, limit) == expected
    assert len(truncate(text, limit)) <= limit


def test_truncate_keeps_a_bare_ampersand_far_from_the_cut():
    # plain_text is not escaped: an "&" five or more characters before the cut is not an entity
    assert truncate("a&bcdefghij", 8) == "a&bcdef" + ELLIPSIS
    assert truncate("a&bcdefghij", 7) == "a" + ELLIPSIS


def test_safe_escapes_then_cuts():
    assert safe("<<<<", 6) == "&lt;" + ELLIPSIS
    assert safe("x" * 5, 5) == "xxxxx"


def test_plain_text_is_never_empty_and_is_cut():
    assert plain("", 10) == {"type": "plain_text", "text": " ", "emoji": True}
    assert plain(None, 10)["text"] == " "
    assert plain("a<b", 10)["text"] == "a<b"          # plain_text shows characters as they are
    assert plain("x" * 11, 10)["text"] == "x" * 9 + ELLIPSIS


# -- link --------------------------------------------------------------------------------------

def test_link_escapes_the_label_and_keeps_an_ordinary_url():
    assert link("https://ss.example.com/app/#/secrets/5/general?a=1&b=2", "db <prod> & co") == (
        "<https://ss.example.com/app/#/secrets/5/general?a=1&b=2|db &lt;prod&gt; &amp; co>")
    assert link("http://ss:8080/x", "a|b") == "<http://ss:8080/x|a|b>"


def test_link_removes_mrkdwn_control_characters_from_the_url():
    assert link("https://ss/x|<!channel>", "db") == "<https://ss/x%7C%3C!channel%3E|db>"
    assert link("https://ss/<a>", "db") == "<https://ss/%3Ca%3E|db>"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)",
                                 "file:///etc/passwd", "data:text/html,x", "slack://open", "ss.example.com/x",
                                 "", "mailto:a@b"])
def test_link_to_anything_but_http_shows_the_label_only(url):
    assert link(url, "db <1>") == "db &lt;1&gt;"


# -- dates -------------------------------------------------------------------------------------

def test_dates_are_shown_in_the_reader_s_time_zone_with_a_utc_fallback():
    assert when(AT) == AT_TOKEN
    assert when(None) == "not set"
    assert when(AT.astimezone(timezone(timedelta(hours=-5)))) == AT_TOKEN   # the same instant


def test_the_utc_fallback_does_not_depend_on_the_machine_s_time_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert when(AT) == AT_TOKEN
    finally:
        monkeypatch.undo()
        time.tzset()


def test_the_window_of_a_request():
    r = AccessRequest(id=1, secret_id=2, secret_name="s", folder_id=None, requester_id=3, requester_username="r",
                      status="Pending")
    assert window(r, 8) == "8 hours from approval (default)"
    assert window(r, 0.5) == "0.5 hours from approval (default)"
    assert window(AccessRequest(**{**r.__dict__, "fingerprint": "", "expiration": AT}), 8) == f"on approval → {AT_TOKEN}"
    assert window(AccessRequest(**{**r.__dict__, "fingerprint": "", "start": AT}), 8) == f"{AT_TOKEN} → not set"


def test_state_lines_escape_names():
    r = AccessRequest(id=1, secret_id=2, secret_name="s", folder_id=None, requester_id=3, requester_username="<r>",
                      status="Canceled")
    assert state_line(r) == ":no_entry_sign: Canceled by &lt;r&gt;"
    assert state_line(r, "Rita & co") == ":no_entry_sign: Canceled by Rita &amp; co"
    assert state_line(AccessRequest(**{**r.__dict__, "status": "Approved", "decided_by": ""})) == (
        ":white_check_mark: Approved by someone")
    assert state_line(AccessRequest(**{**r.__dict__, "status": "Odd & <x>"})) == "Odd &amp; &lt;x&gt;"


def test_named_limits_are_slack_s():
    assert (blocks.SECTION_TEXT_LIMIT, blocks.FIELD_TEXT_LIMIT, blocks.HEADER_LIMIT, blocks.BUTTON_TEXT_LIMIT,
            blocks.CONTEXT_TEXT_LIMIT, blocks.FALLBACK_TEXT_LIMIT) == (3000, 2000, 150, 75, 2000, 4000)
