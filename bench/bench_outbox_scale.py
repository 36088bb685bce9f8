"""Benchmark: the outbox's per-message cost must not depend on the backlog.

For each backlog size (1k, 10k, 50k pending outbox rows, two reviewers per pending request,
plus as many settled requests with sent rows, as a relay that has run a while holds) on a
fresh database with every migration applied, it measures:
- claim + finish: `claim(n)` then `sent(n)` for 300 rows taken from `due()`, per message
  (median wall time, and the mean number of SQLite VM steps, counted with a progress handler);
- `due(limit=100)`: one batch, median of 15.
The baseline is the 1k figure of the same run; the claim is 50k / 1k <= 1.5x.

Run: python bench/bench_outbox_scale.py [--sizes 1000,10000,50000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

from relay.outbox import Outbox
from relay.store import db as store

MEASURED = 300


def fill(db, pending: int, now: datetime) -> None:
    """`pending` pending rows (two per Pending request) after as many sent rows of older, settled
    requests, written by successive polls (one stamp per request, a millisecond apart)."""
    stamp = now.isoformat()
    reqs = pending // 2
    with db.atomic():
        db.conn.executemany(
            "INSERT INTO access_requests (id, secret_id, requester_id, status, first_seen, updated_at) "
            "VALUES (?, 1, 7, ?, ?, ?)",
            ((i, "Pending" if i > reqs else "Approved", stamp, stamp) for i in range(1, 2 * reqs + 1)))
        db.conn.executemany(
            "INSERT INTO outbox (request_id, event, recipient, payload, state, next_attempt_at, created_at) "
            "VALUES (?, 'approval_requested', ?, '{}', ?, ?, ?)",
            ((i, r, "pending" if i > reqs else "sent", at, at)
             for i in range(1, 2 * reqs + 1) for r in (101, 102)
             for at in [(now - timedelta(milliseconds=2 * reqs - i)).isoformat()]))
    db.execute("ANALYZE")


def measure(pending: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        db = store.open_db(f"{d}/scale.db")
        store.migrate(db)
        now = datetime.now(UTC) + timedelta(seconds=1)
        fill(db, pending, now - timedelta(seconds=1))
        ob = Outbox(db, owner="bench")
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0
        db.conn.set_progress_handler(count, 1)
        batches = []
        for _ in range(15):
            t0 = time.perf_counter()
            ob.due(now, limit=100)
            batches.append(time.perf_counter() - t0)
        steps[0] = 0
        due_steps_start = steps[0]
        ob.due(now, limit=100)
        due_steps = steps[0] - due_steps_start
        todo = []
        while len(todo) < MEASURED:
            got = ob.due(now, limit=100)
            # claim+finish is measured on these; take them out of `due` without timing it
            todo.extend(got)
            for n in got:
                ob.claim(n)
            db.execute("UPDATE outbox SET state = 'pending' WHERE state = 'sending'")
            if len(todo) >= MEASURED:
                break
            db.execute(f"UPDATE outbox SET state = 'sent' WHERE id IN ({','.join(str(n.id) for n in got)})")
        todo = todo[:MEASURED]
        db.execute(f"UPDATE outbox SET state = 'pending' WHERE id IN ({','.join(str(n.id) for n in todo)})")
        steps[0] = 0
        each = []
        for n in todo:
            t0 = time.perf_counter()
            assert ob.claim(n)
            ob.sent(n, "U0BENCH")
            each.append(time.perf_counter() - t0)
        per_msg = statistics.median(each)      # the median: robust to a busy machine's spikes
        per_msg_steps = steps[0] / len(todo)
        db.conn.set_progress_handler(None, 0)
        db.conn.close()
    return {"pending": pending, "claim_finish_ms": round(per_msg * 1000, 3),
            "claim_finish_vm_steps": round(per_msg_steps, 1),
            "due100_ms": round(statistics.median(batches) * 1000, 3), "due100_vm_steps": due_steps}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,50000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = [measure(n) for n in sizes]
    base, top = rows[0], rows[-1]
    ratios = {key: round(top[key] / max(base[key], 1e-9), 2)
              for key in ("claim_finish_ms", "claim_finish_vm_steps", "due100_ms", "due100_vm_steps")}
    out = {"rows": rows, f"ratio_{top['pending']}_over_{base['pending']}": ratios,
           "meets_target": all(v <= 1.5 for v in ratios.values())}
    print(json.dumps(out, indent=2))
    return 0 if out["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
