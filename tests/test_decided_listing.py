"""The listing of decided requests, through the real client against the stand-in: newest
decision first, one page while little was decided, every page when SS ignores the order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relay.model import APPROVED, CANCELED, EXPIRED
from relay.sandbox import scenario
from relay.ss.client import RelayCredentials, SecretServerClient

LISTING = r"/api/v1/secret-access-requests$"
NOW = datetime.now(UTC)


@pytest.fixture
def client(sandbox):
    c = SecretServerClient(sandbox.ss.base_url, credentials=RelayCredentials(
        scenario.RELAY_USERNAME, scenario.RELAY_PASSWORD), retry_seconds=1)
    yield c
    c.close()


def approved_at(sb, ages_minutes: list[int]) -> list[int]:
    """One approved request per age (minutes before now), with its decision time set so."""
    ids = []
    for age in ages_minutes:
        rid = sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment=f"{age} min ago")
        sb.ss.approve(rid, sb["bob"].ss_id, "ok", expiration=NOW + timedelta(hours=1))
        sb.ss.world.requests[rid].response_date = NOW - timedelta(minutes=age)
        ids.append(rid)
    return ids


def listing_calls(sb) -> list[dict]:
    return [c.query for c in sb.ss.calls_to(LISTING, "GET")]


def test_reading_stops_at_the_first_decision_older_than_the_window(sandbox, client):
    ids = approved_at(sandbox, [50, 1, 40, 2, 30, 3, 20, 4, 10, 5, 60, 70])
    client.page_size = 4
    sandbox.ss.reset_calls()
    found = client.decided_since(APPROVED, NOW - timedelta(minutes=12), take=5)
    # newest first: 1, 2, 3, 4, 5 and 10 minutes ago
    assert [r.id for r in found] == [ids[1], ids[3], ids[5], ids[7], ids[9], ids[8]]
    # a small first page, all in the window, then a page_size page that reaches older ones
    calls = listing_calls(sandbox)
    assert [(q["skip"], q["take"], q["sortBy[0].name"], q["sortBy[0].direction"]) for q in calls] == [
        ("0", "5", "ResponseDate", "desc"), ("5", "4", "ResponseDate", "desc")]


def test_a_server_that_ignores_the_order_is_read_to_the_end(sandbox, client):
    ids = approved_at(sandbox, [50, 1, 40, 2, 30, 3, 20, 4, 10, 5, 60, 70])
    sandbox.ss.world.honour_sort = False
    client.page_size = 5
    sandbox.ss.reset_calls()
    found = client.decided_since(APPROVED, NOW - timedelta(minutes=12), take=5)
    assert sorted(r.id for r in found) == sorted([ids[1], ids[3], ids[5], ids[7], ids[9], ids[8]])
    assert [q["skip"] for q in listing_calls(sandbox)] == ["0", "5", "10"]


def test_expired_access_is_dated_by_its_end_and_undated_records_are_outside_the_window(sandbox, client):
    (ended,) = approved_at(sandbox, [600])
    sandbox.ss.expire(ended)         # approved ten hours ago, ended now
    gone = sandbox.ss.create_request(sandbox.secrets["prod-db"], sandbox["rita"].ss_id, comment="never mind")
    sandbox.ss.cancel(gone)          # the stand-in gives a canceled request no responseDate
    since = NOW - timedelta(minutes=12)
    assert [r.id for r in client.decided_since(EXPIRED, since)] == [ended]
    assert client.decided_since(CANCELED, since) == []
    with pytest.raises(ValueError):
        client.decided_since("Pending", since)


def test_an_empty_listing_is_no_sign_that_the_order_is_ignored(sandbox, client, monkeypatch, caplog):
    from relay.ss import paging
    monkeypatch.setattr(paging, "_UNSORTED_SEEN", set())      # the warning is logged once per process
    # Test execution: nothing was decided yet (a relay's first polls), then one approval.
    assert client.decided_since(APPROVED, NOW - timedelta(minutes=12)) == []
    (rid,) = approved_at(sandbox, [1])
    assert [r.id for r in client.decided_since(APPROVED, NOW - timedelta(minutes=12))] == [rid]
    # Validating: no warning that SS ignores the order (an empty page echoes nothing to check).
    assert "did not confirm the order" not in caplog.text
