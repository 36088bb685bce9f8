"""Benchmark: what reminders and requester confirmations add to an idle poll.

Claim measured (README "Beyond Secret Server's own bot"): with N pending requests, all with a
reminder scheduled in the future, a no-change poll costs the same CPU with the follow-up hook
as without it (the hook asks one indexed question: is any next_reminder_at due?).
Baseline in the same run: the same relay with the hook removed. Runs are interleaved so that
machine noise hits both sides alike; the figure is the ratio of medians of the polling
thread's CPU time.

Run: python bench/bench_followups.py [--requests 10000] [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

from relay.sandbox import scenario


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    from relay.runtime import Relay
    sb = scenario.start()
    try:
        for i in range(args.requests):
            sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment=f"bench {i}")
        with tempfile.TemporaryDirectory() as d:
            relay = Relay(sb.config(f"{d}/bench.db"))
            first = relay.poller.poll_once()
            assert first.ok, first.error
            scheduled = relay.db.execute(
                "SELECT COUNT(*) FROM reminders WHERE next_reminder_at IS NOT NULL").fetchone()[0]
            hooks = list(relay.poller.on_diff)
            cpu: dict[str, list[float]] = {"with": [], "without": []}
            for _ in range(args.runs):
                for side in ("without", "with"):
                    relay.poller.on_diff[:] = hooks if side == "with" else []
                    c0 = time.thread_time()
                    res = relay.poller.poll_once()
                    cpu[side].append(time.thread_time() - c0)
                    assert res.ok and res.added == 0
            med = {k: statistics.median(v) for k, v in cpu.items()}
            print(json.dumps({
                "pending": args.requests, "reminders_scheduled": scheduled, "runs": args.runs,
                "idle_poll_cpu_ms_without_hook": round(med["without"] * 1000, 1),
                "idle_poll_cpu_ms_with_hook": round(med["with"] * 1000, 1),
                "ratio_with_over_without": round(med["with"] / med["without"], 3),
            }, indent=2))
            relay.stop()
    finally:
        sb.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
