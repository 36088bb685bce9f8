"""Benchmark: 1,000 new requests reach the outbox in one cycle and are delivered at the
configured Slack rate budget.

The Slack stand-in enforces the same budget the relay is configured with (token bucket per
method); the relay must deliver at >= 90% of that budget with <= 1% of calls answered 429.
The baseline in the same run is the budget itself (messages / (n / rate)).

Run: python bench/bench_delivery.py [--requests 1000] [--per-minute 6000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time

from relay.outbox import Outbox
from relay.sandbox import scenario


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--per-minute", type=float, default=6000)
    args = ap.parse_args()
    from relay.runtime import Relay
    sb = scenario.start()
    try:
        # One reviewer per request, so n requests owe n approval messages.
        solo = sb.ss.add_group("Solo approvers", [sb["alice"].ss_id, sb.relay_ss_id])
        secret = sb.ss.add_secret("bench-secret", viewers=[sb["rita"].ss_id], requires_approval=True,
                                  approvers=[solo])
        for i in range(args.requests):
            sb.ss.create_request(secret, sb["rita"].ss_id, comment=f"bench {i}")
        method = "chat.postEphemeral"
        sb.slack.set_rate_limit(method, args.per_minute)
        with tempfile.TemporaryDirectory() as d:
            relay = Relay(sb.config(f"{d}/bench.db", SLACK_RATE_LIMITS=json.dumps({method: args.per_minute})))
            t0 = time.perf_counter()
            result = relay.poller.poll_once()
            poll_s = time.perf_counter() - t0
            assert result.ok and result.added == args.requests, result
            stop = threading.Event()
            worker = threading.Thread(target=relay.delivery.run, args=(stop,), daemon=True)
            worker.start()
            sb.slack.wait_for(method, predicate=lambda c: c.ok, count=args.requests,
                              timeout=args.requests / args.per_minute * 60 * 3 + 30)
            stop.set()
            relay.delivery.wake.set()
            worker.join(10)
            backlog = Outbox(relay.db).backlog()
        calls = sb.slack.calls_to(method)
        ok = [c for c in calls if c.ok]
        span = ok[-1].at - ok[0].at
        budget_per_s = args.per_minute / 60
        achieved = (len(ok) - 1) / span if span > 0 else float("inf")
        out = {
            "requests": args.requests,
            "poll_to_outbox_s": round(poll_s, 2),
            "configured_per_minute": args.per_minute,
            "delivered": len(ok),
            "calls": len(calls),
            "answered_429": sb.slack.count_429(),
            "share_429": round(sb.slack.count_429() / len(calls), 4),
            "achieved_per_s": round(achieved, 2),
            "budget_per_s": budget_per_s,
            "ratio_achieved_over_budget": round(achieved / budget_per_s, 3),
            "outbox": backlog,
        }
        out["meets_targets"] = out["ratio_achieved_over_budget"] >= 0.9 and out["share_429"] <= 0.01
        print(json.dumps(out, indent=2))
        return 0 if out["meets_targets"] else 1
    finally:
        sb.stop()


if __name__ == "__main__":
    raise SystemExit(main())
