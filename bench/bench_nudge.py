"""Benchmark: request created -> first approver message, with and without nudges.

A running relay (its own scheduler, delivery thread and HTTP server) polls the Secret Server
stand-in every `--interval` seconds. `--requests` requests are created at random moments spread
over `--spread` seconds (two poll intervals by default, so creation falls at every phase of the
poll cycle without waiting one interval per request). For each: the time from its creation in SS
until Slack received the first approver message about it.

Two phases in the same run, each with its own sandbox and relay, same interval and seed:
- baseline "poll only": the relay hears of a request at its next scheduled poll;
- "with nudges": the stand-in SS calls `POST /ss/nudge` (bearer token) when a request is created,
  as an Event Pipeline "Run Script" task would (relay.sandbox.pipeline); polls stay scheduled.

Target (README "Instant nudges"): with nudges, p95 <= 3 s at a 15 s poll interval.

Run: python bench/bench_nudge.py [--requests 20] [--interval 15] [--spread 30]
"""

from __future__ import annotations

import argparse
import logging
import random
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass

from relay.runtime import Relay
from relay.sandbox import scenario
from relay.sandbox.pipeline import NudgePipeline

TARGET_P95_SECONDS = 3.0
GRACE_SECONDS = 10.0        # how long past one interval a request may take before it counts as missed


@dataclass
class Phase:
    name: str
    latencies: list[float]
    missed: int
    nudges_sent: int = 0
    nudges_accepted: int = 0
    nudged_polls: int = 0


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def first_asked_at(sb, rid: int) -> float | None:
    """When Slack received the first approver message about `rid` (monotonic), if it has."""
    needle = f"'value': '{rid}'"
    times = [c.at for c in sb.slack.calls if c.method in ("chat.postEphemeral", "chat.postMessage")
             and c.args.get("channel") != sb["rita"].slack_id and needle in repr(c.args.get("blocks"))]
    return min(times) if times else None


def run_phase(name: str, *, nudges: bool, n: int, interval: float, spread: float, seed: int,
              directory: str) -> Phase:
    rng = random.Random(seed)
    token = secrets.token_urlsafe(24)
    sb = scenario.start()
    relay = Relay(sb.config(f"{directory}/{name.replace(' ', '-')}.db",
                            POLL_INTERVAL_SECONDS=str(interval), NUDGE_TOKEN=token))
    polled = threading.Event()

    def on_poll(result) -> None:
        if result.ok:
            polled.set()
    relay.poller.listeners.append(on_poll)
    pipeline: NudgePipeline | None = None
    try:
        relay.start()
        if not polled.wait(30):
            raise RuntimeError("the relay's first poll did not succeed")
        if nudges:
            pipeline = NudgePipeline(f"http://127.0.0.1:{relay.port}/ss/nudge", token).attach(sb.ss)
        offsets = sorted(rng.uniform(0, spread) for _ in range(n))
        pause = threading.Event()           # never set: the scenario's own timing, not synchronisation
        start = time.monotonic()
        created: dict[int, float] = {}
        for i, offset in enumerate(offsets):
            pause.wait(max(0.0, start + offset - time.monotonic()))
            at = time.monotonic()
            rid = sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment=f"{name} {i}")
            created[rid] = at
        deadline = time.monotonic() + interval + GRACE_SECONDS
        while time.monotonic() < deadline and any(first_asked_at(sb, rid) is None for rid in created):
            pause.wait(0.05)
        latencies = [asked - at for rid, at in created.items() if (asked := first_asked_at(sb, rid)) is not None]
        phase = Phase(name, latencies, missed=n - len(latencies))
        if pipeline is not None:
            pipeline.detach()
            phase.nudges_sent = len(pipeline.runs)
            phase.nudges_accepted = sum(1 for r in pipeline.runs if r.status == 200)
        phase.nudged_polls = relay.nudger.polls if relay.nudger else 0
        return phase
    finally:
        if pipeline is not None:
            pipeline.detach()
        relay.stop()
        sb.stop()


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--interval", type=float, default=15.0)
    ap.add_argument("--spread", type=float, default=None, help="seconds over which requests are created "
                                                                "(default: two poll intervals)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)    # the table, not the relay's own notes
    spread = args.spread if args.spread is not None else 2 * args.interval
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        phases = [run_phase(name, nudges=nudges, n=args.requests, interval=args.interval, spread=spread,
                            seed=args.seed, directory=d)
                  for name, nudges in (("poll only", False), ("with nudges", True))]
    print(f"request created -> first approver message; poll interval {args.interval:g} s, "
          f"{args.requests} requests created over {spread:g} s per phase")
    print()
    print(f"{'phase':<12} {'requests':>8} {'asked':>6} {'p50 s':>7} {'p95 s':>7} {'max s':>7} "
          f"{'nudges':>7} {'nudged polls':>13}")
    for p in phases:
        asked = len(p.latencies)
        print(f"{p.name:<12} {asked + p.missed:>8} {asked:>6} {fmt(percentile(p.latencies, 0.5)):>7} "
              f"{fmt(percentile(p.latencies, 0.95)):>7} {fmt(max(p.latencies) if p.latencies else None):>7} "
              f"{(f'{p.nudges_accepted}/{p.nudges_sent}' if p.nudges_sent else '-'):>7} {p.nudged_polls:>13}")
    base, nudged = phases
    b50, b95 = percentile(base.latencies, 0.5), percentile(base.latencies, 0.95)
    n50, n95 = percentile(nudged.latencies, 0.5), percentile(nudged.latencies, 0.95)
    print()
    if b50 and b95 and n50 is not None and n95 is not None:
        print(f"with nudges / poll only: p50 {n50 / b50:.2f}x, p95 {n95 / b95:.2f}x")
    ok = nudged.missed == 0 and n95 is not None and n95 <= TARGET_P95_SECONDS
    print(f"target p95 <= {TARGET_P95_SECONDS:g} s with nudges: {'met' if ok else 'NOT met'}; "
          f"total run {time.monotonic() - began:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
