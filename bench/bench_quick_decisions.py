"""Benchmark: requests decided 0.1 s after creation, faster than one poll interval.

A running relay (its own scheduler and delivery thread) polls the Secret Server stand-in every
`--interval` seconds. Requests are created at random moments and approved 0.1 s later. For each
one: how long from the approval until Slack received the requester's "approved" message, and
whether a reviewer was asked about it anyway (a poll that happened to fall inside the 0.1 s).

Claims measured (README "Numbers"):
- share of requesters told within one poll interval + 5 s (target 100%), p50 / p95 latency;
- baseline in the same run: ordinary decisions (approved after the reviewers were asked), whose
  latency is bounded by the same poll; the ratio quick p50 / ordinary p50 should be about 1;
- second baseline in the same run: the same quick decisions with the decided listing switched
  off (the relay before it read decisions every cycle): how many requesters were told at all.

Run: python bench/bench_quick_decisions.py [--requests 20] [--interval 5]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

from relay.sandbox import scenario

GRACE_SECONDS = 5.0     # "within one poll interval + 5 s"
DECISION_DELAY = 0.1


def told_at(sb, comment: str) -> float | None:
    """When Slack received the requester's message carrying `comment` (monotonic), if it did."""
    for c in sb.slack.calls_to("chat.postMessage"):
        if c.ok and c.args.get("channel") == sb["rita"].slack_id and comment in repr(c.args.get("blocks")):
            return c.at
    return None


def asked(sb, rid: int) -> bool:
    return any(f"'value': '{rid}'" in repr(c.args.get("blocks")) for c in sb.slack.calls_to("chat.postEphemeral"))


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)


def quick_phase(sb, n: int, interval: float, tag: str) -> list[tuple[int, str, float]]:
    """n requests, each approved DECISION_DELAY s after creation, spread over about 2 intervals."""
    out = []
    pause = threading.Event()            # never set: a scenario delay, not synchronisation
    for i in range(n):
        pause.wait(random.uniform(0, 2 * interval / n))
        rid = sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment=f"{tag} {i}")
        pause.wait(DECISION_DELAY)
        comment = f"{tag}-approval-{i}"
        sb.ss.approve(rid, sb["bob"].ss_id, comment, expiration=datetime.now(timezone.utc) + timedelta(hours=1))
        out.append((rid, comment, time.monotonic()))
    return out


def ordinary_phase(sb, n: int, interval: float) -> list[tuple[int, str, float]]:
    """n requests approved a random moment after their reviewers were asked."""
    ids = [sb.ss.create_request(sb.secrets["wiki-admin"], sb["rita"].ss_id, comment=f"ordinary {i}")
           for i in range(n)]
    out: list[tuple[int, str, float]] = []
    lock = threading.Lock()

    def decide(i: int, rid: int) -> None:
        pause = threading.Event()
        deadline = time.monotonic() + 3 * interval + 10
        while not asked(sb, rid) and time.monotonic() < deadline:
            pause.wait(0.05)
        pause.wait(random.uniform(0, interval))
        comment = f"ordinary-approval-{i}"
        sb.ss.approve(rid, sb["alice"].ss_id, comment, expiration=datetime.now(timezone.utc) + timedelta(hours=1))
        with lock:
            out.append((rid, comment, time.monotonic()))

    threads = [threading.Thread(target=decide, args=(i, rid)) for i, rid in enumerate(ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def wait_told(sb, decided: list[tuple[int, str, float]], limit: float) -> dict[str, float | None]:
    deadline = max(at for _, _, at in decided) + limit
    pause = threading.Event()
    while time.monotonic() < deadline and any(told_at(sb, c) is None for _, c, _ in decided):
        pause.wait(0.05)
    return {c: told_at(sb, c) for _, c, _ in decided}


def summary(sb, decided: list[tuple[int, str, float]], told: dict[str, float | None], limit: float) -> dict:
    latencies = [when - at for _, c, at in decided if (when := told[c]) is not None]
    within = sum(1 for lat in latencies if lat <= limit)
    return {"requests": len(decided), "told": len(latencies),
            "told_within_limit_pct": round(100.0 * within / len(decided), 1),
            "p50_s": percentile(latencies, 0.5), "p95_s": percentile(latencies, 0.95),
            "max_s": round(max(latencies), 2) if latencies else None,
            "reviewers_asked_anyway": sum(1 for rid, _, _ in decided if asked(sb, rid))}


def run_relay(sb, path: str, interval: float, *, decided_listing: bool = True):
    from relay.runtime import Relay
    relay = Relay(sb.config(path, POLL_INTERVAL_SECONDS=str(interval)))
    if not decided_listing:
        # the relay before it read decisions every cycle
        relay.poller._decided = lambda since: {}  # type: ignore[method-assign]
    polled = threading.Event()

    def on_poll(result) -> None:
        if result.ok:
            polled.set()
    relay.poller.listeners.append(on_poll)
    relay.start(http=False)
    polled.wait(30)
    return relay


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    random.seed(args.seed)
    limit = args.interval + GRACE_SECONDS
    sb = scenario.start()
    try:
        with tempfile.TemporaryDirectory() as d:
            relay = run_relay(sb, f"{d}/quick.db", args.interval)
            try:
                quick = quick_phase(sb, args.requests, args.interval, "quick")
                quick_told = wait_told(sb, quick, limit)
                ordinary = ordinary_phase(sb, max(5, args.requests // 2), args.interval)
                ordinary_told = wait_told(sb, ordinary, limit)
            finally:
                relay.stop()
            old = run_relay(sb, f"{d}/old.db", args.interval, decided_listing=False)
            try:
                before = quick_phase(sb, 5, args.interval, "unread")
                before_told = wait_told(sb, before, limit)
            finally:
                old.stop()
        q = summary(sb, quick, quick_told, limit)
        o = summary(sb, ordinary, ordinary_told, limit)
        out = {
            "poll_interval_s": args.interval,
            "limit_s": limit,
            "quick_decisions_0_1s_after_creation": q,
            "baseline_ordinary_decisions": o,
            "ratio_p50_quick_over_ordinary": round(q["p50_s"] / o["p50_s"], 2) if o["p50_s"] else None,
            "baseline_without_decided_listing": summary(sb, before, before_told, limit),
        }
        print(json.dumps(out, indent=2))
        return 0 if q["told_within_limit_pct"] == 100.0 else 1
    finally:
        sb.stop()


if __name__ == "__main__":
    raise SystemExit(main())
