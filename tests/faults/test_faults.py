"""The fault harness, short mode: one of each fault this relay handles, injected into a real
`ssrelay run` process under a steady workload; the invariant holds over everything Slack
recorded (tests/faults/harness.py; the long mode is `python -m tests.faults --long`)."""

from __future__ import annotations

import pytest

from .harness import FAULTS, run_harness


@pytest.mark.parametrize("messages", ["ephemeral", "dm"])
def test_every_owed_notification_once_through_kills_stops_and_faults(tmp_path, messages):
    # dm: reviewers' cards are posted, found again after a lost answer, and rewritten in place
    kinds = [k for k in FAULTS if k.short]
    report = run_harness(kinds, workdir=tmp_path, seed=7, fault_seconds=1.2, gap_seconds=0.3, min_kills=2,
                         messages=messages, log=print)
    print(report.table())
    assert report.ok, report.table() + "\n" + report.details()
    assert report.kills >= 2
    assert report.owed >= 20
