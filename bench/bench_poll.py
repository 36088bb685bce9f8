"""Benchmark: a poll cycle over 5,000 pending requests with no change.

Claims measured (README "Numbers"):
- the no-change cycle makes only the paged list calls, no per-request calls;
- relay CPU outside the HTTP reads (thread CPU of the polling thread, minus the CPU spent
  inside the SS client's HTTP calls and JSON decoding) stays under 100 ms;
- ratio against the naive baseline measured in the same run: re-reading every request
  individually (GET /secret-access-requests/{id} for each).

Run: python bench/bench_poll.py [--requests 5000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from relay.sandbox import scenario


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=5000)
    args = ap.parse_args()
    from relay.runtime import Relay
    sb = scenario.start()
    try:
        for i in range(args.requests):
            sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment=f"bench {i}")
        with tempfile.TemporaryDirectory() as d:
            relay = Relay(sb.config(f"{d}/bench.db"))
            t0 = time.perf_counter()
            first = relay.poller.poll_once()
            first_wall = time.perf_counter() - t0
            assert first.ok, first.error

            # Instrument the client: CPU of this thread spent inside HTTP reads.
            inside = [0.0]
            real_api = relay.ss._api

            def timed_api(*a, **kw):
                c0 = time.thread_time()
                try:
                    return real_api(*a, **kw)
                finally:
                    inside[0] += time.thread_time() - c0
            relay.ss._api = timed_api

            runs = []
            for _ in range(5):
                sb.ss.reset_calls()
                inside[0] = 0.0
                c0, w0 = time.thread_time(), time.perf_counter()
                res = relay.poller.poll_once()
                cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
                assert res.ok and res.added == 0
                per_request = [c for c in sb.ss.calls if c.path != "/api/v1/secret-access-requests"
                               and c.path.startswith("/api/v1/secret-access-requests")]
                runs.append({"wall_s": wall, "thread_cpu_s": cpu, "cpu_in_http_s": inside[0],
                             "cpu_outside_http_s": cpu - inside[0], "calls": len(sb.ss.calls),
                             "per_request_calls": len(per_request)})

            # Baseline: re-read every pending request individually, as a naive poller would.
            ids = [r.id for r in relay.ss.list_pending()]
            sb.ss.reset_calls()
            c0, w0 = time.thread_time(), time.perf_counter()
            for rid in ids:
                relay.ss.get_request(rid)
            base_cpu, base_wall = time.thread_time() - c0, time.perf_counter() - w0
            base_calls = len(sb.ss.calls)
            relay.ss.close()

        best = min(runs, key=lambda r: r["wall_s"])
        out = {
            "pending_requests": args.requests,
            "first_cycle_wall_s": round(first_wall, 3),
            "no_change_cycle": {k: round(v, 4) if isinstance(v, float) else v for k, v in best.items()},
            "baseline_reread_all": {"wall_s": round(base_wall, 3), "thread_cpu_s": round(base_cpu, 3),
                                    "calls": base_calls},
            "ratio_wall_baseline_over_cycle": round(base_wall / best["wall_s"], 1),
            "ratio_calls_baseline_over_cycle": round(base_calls / best["calls"], 1),
            "cpu_outside_http_under_100ms": best["cpu_outside_http_s"] < 0.1,
            "only_list_calls": all(r["per_request_calls"] == 0 for r in runs),
        }
        print(json.dumps(out, indent=2))
        return 0 if out["only_list_calls"] else 1
    finally:
        sb.stop()


if __name__ == "__main__":
    raise SystemExit(main())
