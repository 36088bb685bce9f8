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

Run: python bench/bench_delivery.py [--speed 60] [--seconds 6] [--modes ephemeral,dm,first_contact]
[--baseline]
(`--speed 1 --seconds 60`: a minute per mode at Slack's real rates.)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile

from relay.sandbox import scenario
from relay.slack.api import DEFAULT_RATES

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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6.0, help="budget-seconds of messages per mode")
    ap.add_argument("--speed", type=float, default=60)
    ap.add_argument("--modes", default="ephemeral,dm,first_contact")
    ap.add_argument("--baseline", action="store_true", help="also run each mode with the previous pacer")
    args = ap.parse_args()
    results = []
    for m in args.modes.split(","):
        if args.baseline:
            results.append(run_mode(m, args.seconds, args.speed, legacy=True))
        results.append(run_mode(m, args.seconds, args.speed))
    ok = all(r["percent_of_budget"] >= 97 and r["answered_429"] == 0 for r in results if r["pacer"] == "new")
    print(json.dumps({"speed": args.speed, "seconds_per_mode": args.seconds, "results": results,
                      "meets_targets": ok}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
