"""Benchmark: delivery at Slack's rate budget, with no 429.

The relay runs as a real subprocess (`ssrelay run`) against the stand-ins in this process. The
Slack stand-in enforces the same budget the relay is configured with, as a one-token bucket per
method (no burst: two calls closer than 60/rate seconds get a 429). Rates are Slack's tier rates
times `--speed` (x60 by default, so a minute of Slack traffic takes a second). Three modes:
- ephemeral: one new reviewer-known request per message, chat.postEphemeral;
- dm: the same as persistent cards, chat.postMessage;
- first_contact: 30 reviewers the relay has never seen (users.lookupByEmail and
  conversations.open for each first), every request asks all 30, chat.postEphemeral.
Reported per mode: messages, achieved rate of the carrying method as % of its configured
budget (the baseline, measured in the same run as the span between the first and the last
accepted call), and the number of 429 answers. Targets: >= 97% and 0 x 429.
`--baseline` also runs each mode with the pacer's previous spacing rule (bench/_legacy_pacer.py:
next call one interval after the previous answer minus the shortest recent round trip), in the
same run, and reports both.

`--jitter` also measures what a pacer that spaces calls from when they *leave* would face: a
probe process sends chat.postEphemeral through WebClient at 97% of the budget, open loop, and
the report gives the gaps between the calls' arrivals at the stand-in (a gap under the interval
is a 429 from a one-token bucket) and the round trips, hence the ceiling of a pacer that waits
for each answer: interval / (interval + median round trip).

Run: python bench/bench_delivery.py [--speed 60] [--seconds 6] [--modes ephemeral,dm,first_contact]
[--baseline] [--jitter]
(`--speed 1 --seconds 60`: a minute per mode at Slack's real rates.)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile

from relay.sandbox import scenario
from relay.slack.api import DEFAULT_RATES, make_client

PACED = ("chat.postMessage", "chat.postEphemeral", "chat.update", "conversations.open", "users.lookupByEmail",
         "conversations.history", "views.publish")


def run_mode(mode: str, seconds: float, speed: float, legacy: bool = False) -> dict:
    sb = scenario.start()
    try:
        rates = {m: DEFAULT_RATES.get(m, 50) * speed for m in PACED}
        carrier = "chat.postMessage" if mode == "dm" else "chat.postEphemeral"
        messages = max(30, round(rates[carrier] / 60 * seconds))
        if mode == "first_contact":
            people = [sb.add_person(f"rev{i:02d}") for i in range(30)]
            group = sb.ss.add_group("New approvers", [p.ss_id for p in people] + [sb.relay_ss_id])
            per_request = 30
        else:
            group = sb.ss.add_group("Solo approvers", [sb["alice"].ss_id, sb.relay_ss_id])
            per_request = 1
        secret = sb.ss.add_secret("bench-secret", viewers=[sb["rita"].ss_id], requires_approval=True,
                                  approvers=[group])
        for i in range(messages // per_request):
            sb.ss.create_request(secret, sb["rita"].ss_id, comment=f"bench {i}")
        owed = messages // per_request * per_request
        for method, rate in rates.items():
            sb.slack.set_rate_limit(method, rate, burst=1)
        method = carrier
        with tempfile.TemporaryDirectory() as d:
            env = {**os.environ, **sb.environ(f"{d}/bench.db", SLACK_RATE_LIMITS=json.dumps(rates),
                                              SLACK_APPROVER_MESSAGES="dm" if mode == "dm" else "ephemeral",
                                              POLL_INTERVAL_SECONDS="30")}
            env.pop("SSRELAY_CONFIG", None)
            launcher = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "_legacy_pacer.py")] if legacy \
                else ["-m", "relay"]
            proc = subprocess.Popen([sys.executable, *launcher, "--log-format", "text", "run"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=d)
            try:
                sb.slack.wait_for(method, predicate=lambda c: c.ok is True, count=owed,
                                  timeout=owed / rates[method] * 60 * 3 + 60)
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
        ok = [c for c in sb.slack.calls_to(method) if c.ok]
        span = ok[-1].at - ok[0].at
        budget = rates[method] / 60
        achieved = (len(ok) - 1) / span if span > 0 else float("inf")
        out: dict[str, object] = {
            "mode": mode,
            "pacer": "baseline" if legacy else "new",
            "messages": len(ok),
            "method": method,
            "budget_per_s": round(budget, 2),
            "achieved_per_s": round(achieved, 2),
            "percent_of_budget": round(100 * achieved / budget, 1),
            "answered_429": sb.slack.count_429(),
        }
        by_method: dict[str, int] = {}
        for c in sb.slack.calls:
            if c.status == 429:
                by_method[c.method] = by_method.get(c.method, 0) + 1
        if by_method:
            out["answered_429_by_method"] = by_method
        if mode == "first_contact":
            out["lookups"] = len([c for c in sb.slack.calls_to("users.lookupByEmail") if c.ok])
            out["dm_opens"] = len([c for c in sb.slack.calls_to("conversations.open") if c.ok])
        return out
    finally:
        sb.stop()


def probe_jitter(seconds: float, speed: float) -> dict:
    """Open-loop calls at 97% of chat.postEphemeral's budget; see the module's docstring."""
    sb = scenario.start()
    try:
        rate = DEFAULT_RATES["chat.postEphemeral"] * speed
        interval = 60.0 / rate
        count = max(30, round(rate / 60 * seconds))
        alice = sb["alice"].slack_id
        channel = make_client(sb.slack.api_url, sb.slack.bot_token).conversations_open(users=alice)["channel"]["id"]
        probe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_open_loop_probe.py")
        out = subprocess.run([sys.executable, probe, sb.slack.api_url, sb.slack.bot_token, channel, alice,
                              str(interval / 0.97), str(count)], capture_output=True, text=True, check=True,
                             timeout=count * interval * 3 + 60)
        trips = json.loads(out.stdout)["trips"]
        arrivals = [c.at for c in sb.slack.calls_to("chat.postEphemeral")]
        gaps = sorted(b - a for a, b in itertools.pairwise(arrivals))
        left = sorted(b[0] - a[0] for a, b in itertools.pairwise(trips))
        rtts = sorted(b - a for a, b in trips)

        def pct(xs: list[float], p: float) -> float:
            return round(1000 * xs[min(len(xs) - 1, int(p * len(xs)))], 3)
        return {
            "speed": speed, "calls": len(arrivals), "interval_ms": round(1000 * interval, 3),
            "spacing_ms": round(1000 * interval / 0.97, 3),
            "departure_gap_ms_min": pct(left, 0),
            "arrival_gap_ms": {"min": pct(gaps, 0), "p1": pct(gaps, 0.01), "p50": pct(gaps, 0.5),
                               "p99": pct(gaps, 0.99)},
            "arrival_gaps_under_interval": sum(g < interval for g in gaps),
            "round_trip_ms": {"min": pct(rtts, 0), "p50": pct(rtts, 0.5), "p99": pct(rtts, 0.99)},
            "answer_paced_ceiling_percent": round(100 * interval / (interval + rtts[len(rtts) // 2]), 1),
        }
    finally:
        sb.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6.0, help="budget-seconds of messages per mode")
    ap.add_argument("--speed", type=float, default=60)
    ap.add_argument("--modes", default="ephemeral,dm,first_contact")
    ap.add_argument("--baseline", action="store_true", help="also run each mode with the previous pacer")
    ap.add_argument("--jitter", action="store_true", help="also probe what an open-loop pacer would face")
    args = ap.parse_args()
    results = []
    jitter = probe_jitter(args.seconds, args.speed) if args.jitter else None
    for m in args.modes.split(","):
        if args.baseline:
            results.append(run_mode(m, args.seconds, args.speed, legacy=True))
        results.append(run_mode(m, args.seconds, args.speed))
    ok = all(r["percent_of_budget"] >= 97 and r["answered_429"] == 0 for r in results if r["pacer"] == "new")
    report: dict[str, object] = {"speed": args.speed, "seconds_per_mode": args.seconds, "results": results,
                                 "meets_targets": ok}
    if jitter is not None:
        report["open_loop_probe"] = jitter
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
