"""Benchmark: the relay's memory (RSS) and database size under a steady load.

`ssrelay run` runs as a real subprocess against the stand-ins in this process (the same set-up
as the fault harness's soak, without faults). A steady workload: a new access request every
`--every` seconds (one new secret each, as the harness does), each decided a few seconds later:
approved, denied, canceled, approved then expired, or approved / denied by a reviewer clicking
the button of the ephemeral message the relay posted (alice and bob are signed in). Every few
seconds someone opens the app's Home tab, and /readyz and /metrics are read as an orchestrator
and a scraper would.

The relay's VmRSS (and its thread and file-descriptor counts) is sampled every `--sample`
seconds. Reported: the RSS growth after the first minute, as the slope of a least-squares line
over every sample after that minute (MiB a minute; target < 0.2), the RSS at the end, the
slope over the second half alone (a plateau flattens: this one is smaller), the database size
(relay.db with its -wal and -shm) and the requests and messages the load produced.

`--baseline` first soaks the relay as it was before its memory was bounded (bench/_soak_relay.py
with SOAK_LEGACY=1: a statement text per id-list length, connections of ended threads kept), with
the same load and seed, and reports both. `--probe` adds what tracemalloc cannot see, from inside
the relay: SQLite's heap, glibc's heap, and the connections with their page caches and prepared
statements (bench/_soak_relay.py).

`--tracemalloc` runs the relay through bench/_soak_relay.py: the top allocation growth
between a snapshot after the first minute and the latest one (by line and by traceback), and the
growth in live objects by type, are written to `--trace-out` every 30 s and at exit (tracemalloc costs
memory and CPU: its RSS figures are not the relay's).

Run: python bench/bench_soak.py [--minutes 10] [--short] [--baseline] [--probe] [--tracemalloc]
[--trace-out FILE]
(`--short`: 2 minutes, a smoke run of the bench itself.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import requests

from relay.sandbox import scenario
from relay.sandbox.slack_client import SlackClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WARMUP_SECONDS = 60.0                 # growth is measured after this
HOLD_SECONDS = 4.0                    # a request stays Pending at least this long (asks go out)
# A request's fate, with its share of the load.
FATES = (("approved", 0.25), ("denied", 0.15), ("canceled", 0.15), ("expired", 0.2),
         ("click_approve", 0.15), ("click_deny", 0.1))
BUDGETS = {"chat.postEphemeral": 300, "chat.postMessage": 300, "chat.update": 300,
           "conversations.open": 6000, "users.lookupByEmail": 6000, "views.publish": 6000}


def slope_per_minute(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) samples, per minute."""
    n = len(samples)
    if n < 3:
        return None
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    if var == 0:
        return None
    return 60 * sum((t - mt) * (v - mv) for t, v in samples) / var


def proc_status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "Threads", "RssAnon", "RssFile"):
                out[key] = int(rest.split()[0])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return out


class Load:
    """The steady workload, in one thread: creations on a clock, decisions when due."""

    def __init__(self, sb: scenario.Sandbox, client: SlackClient, relay_url: str, every: float, seed: int):
        self.sb, self.client, self.relay_url, self.every = sb, client, relay_url, every
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.due: list[tuple[float, int, str, str]] = []      # (at, request id, secret name, step)
        self.n = 0
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []
        self.folder = sb.ss.add_folder("Soak", path="\\Soak")
        self.thread = threading.Thread(target=self._loop, name="soak-load", daemon=True)

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def _loop(self) -> None:
        next_create = next_probe = time.monotonic()
        while not self.stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_create:
                    self._create()
                    next_create = now + self.every
                if now >= next_probe:
                    self._probe()
                    next_probe = now + 5.0
                self.due.sort()
                while self.due and self.due[0][0] <= time.monotonic():
                    _, rid, name, step = self.due.pop(0)
                    self._step(rid, name, step)
            except Exception as exc:      # a hiccup of the load is reported, the soak goes on
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            wake = min([next_create, next_probe] + [d[0] for d in self.due[:1]])
            self.stop.wait(max(0.0, wake - time.monotonic()))

    def _create(self) -> None:
        sb = self.sb
        self.n += 1
        name = f"soak{self.n:05d}"
        secret = sb.ss.add_secret(name, folder_id=self.folder, template_name="Password",
                                  viewers=[sb[p].ss_id for p in ("rita", "alice", "bob")],
                                  requires_approval=True, approvers=[sb.groups["approvers"]])
        rid = sb.ss.create_request(secret, sb["rita"].ss_id, comment=f"soak {name}")
        fate = self.rng.choices([f for f, _ in FATES], [w for _, w in FATES])[0]
        self.due.append((time.monotonic() + HOLD_SECONDS + self.rng.uniform(0, 3), rid, name, fate))
        self.count("created")

    def _step(self, rid: int, name: str, step: str) -> None:
        ss, sb = self.sb.ss, self.sb
        if step.startswith("click_") and self._click(rid, step.removeprefix("click_")):
            self.count(step)
            return
        if step == "denied" or step == "click_deny":
            ss.deny(rid, sb["alice"].ss_id, f"no {name}")
            step = "denied"
        elif step == "canceled":
            ss.cancel(rid)
        elif step == "expire_now":
            ss.expire(rid)
        else:
            window = HOLD_SECONDS + self.rng.uniform(0, 2)
            until = ss.now() + timedelta(seconds=window) if step == "expired" else None
            ss.approve(rid, sb["bob"].ss_id, f"ok {name}", expiration=until)
            if step == "expired":
                self.due.append((time.monotonic() + window, rid, name, "expire_now"))
            step = "approved" if step == "click_approve" else step
        self.count(step)

    def _click(self, rid: int, action: str) -> bool:
        """A reviewer clicks Approve / Deny on the relay's ephemeral ask, when it has one."""
        who = "alice" if action == "deny" else "bob"
        uid = self.sb[who].slack_id
        cards = [m for m in self.sb.slack.ephemerals(uid) if f"'value': '{rid}'" in repr(m.get("blocks"))
                 and "'actions'" in repr(m.get("blocks"))]
        if not cards:
            return False
        card = cards[-1]
        payload = self.client.click_message(uid, action, str(rid), f"request:{rid}", card, ephemeral=True)
        return self.client.send_interaction(payload).status_code == 200

    def _probe(self) -> None:
        """A Home tab opened by one of the cast; /readyz and /metrics read."""
        who = self.rng.choice(("rita", "alice", "bob"))
        self.client.send_event(self.client.home_opened(self.sb[who].slack_id)).raise_for_status()
        self.count("home_opened")
        for path in ("/readyz", "/metrics"):
            requests.get(self.relay_url + path, timeout=5)


def start_relay(sb: scenario.Sandbox, workdir: str, *, trace: str | None,
                probe: str | None, legacy: bool = False) -> tuple[subprocess.Popen, int, Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSRELAY_")}
    env.update(sb.environ(f"{workdir}/relay.db", POLL_INTERVAL_SECONDS="1",
                          SLACK_RATE_LIMITS=json.dumps(BUDGETS), SLACK_APPROVER_MESSAGES="ephemeral"))
    launcher = ["-m", "relay"]
    if trace or probe or legacy:
        launcher = [str(HERE / "_soak_relay.py")]
    if legacy:
        env["SOAK_LEGACY"] = "1"
    if trace:
        env["SOAK_TRACEMALLOC_OUT"] = trace
        env["SOAK_TRACEMALLOC_FIRST_SECONDS"] = str(WARMUP_SECONDS)
    if probe:
        env["SOAK_PROBE_OUT"] = probe
    log_path = Path(workdir) / "relay.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, *launcher, "run"], env=env, cwd=str(ROOT),
                                stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "http_port" in rec:
                return proc, int(rec["http_port"]), log_path
        if proc.poll() is not None:
            raise RuntimeError(f"relay exited: {log_path.read_text()[-2000:]}")
        threading.Event().wait(0.2)
    raise RuntimeError("the relay never said which port it listens on")


def probe_summary(path: Path) -> dict:
    """Growth of SQLite's heap and of glibc's heap after the first minute (the probe's lines),
    and the connections at the end: how many, by thread, with their page cache and statements."""
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    if not recs:
        return {}
    last = recs[-1]
    after = [r for r in recs if r["t"] >= WARMUP_SECONDS]

    def slope(key: str) -> float | None:
        v = slope_per_minute([(r["t"], r[key] / 2**20) for r in after])
        return None if v is None else round(v, 3)

    threads: dict[str, int] = {}
    for c in last["connections"]:
        kind = c["thread"].rstrip("0123456789_").rstrip("-_ ") or c["thread"]
        threads[kind] = threads.get(kind, 0) + 1
    return {
        "sqlite_heap_growth_mib_per_min": slope("sqlite_used"),
        "malloc_in_use_growth_mib_per_min": slope("malloc_in_use"),
        "malloc_arena_growth_mib_per_min": slope("malloc_arena"),
        "pymalloc_in_use_growth_mib_per_min": slope("pymalloc_in_use") if "pymalloc_in_use" in last else None,
        "pymalloc_arenas_start_end": [recs[0].get("pymalloc_arenas"), last.get("pymalloc_arenas")],
        "sqlite_heap_mib_end": round(last["sqlite_used"] / 2**20, 2),
        "connections_end": len(last["connections"]),
        "connections_of_ended_threads": sum(1 for c in last["connections"] if not c["alive"]),
        "connections_by_thread": threads,
        "page_cache_mib_end": round(sum(c["cache"] for c in last["connections"]) / 2**20, 2),
        "statements_mib_end": round(sum(c["stmt"] for c in last["connections"]) / 2**20, 2),
        "largest_page_cache_kib": round(max((c["cache"] for c in last["connections"]), default=0) / 1024),
    }


def soak(minutes: float, every: float, sample: float, seed: int, trace: str | None, probe: bool,
         legacy: bool = False) -> dict:
    sb = scenario.start()
    try:
        for method, calls_a_minute in BUDGETS.items():
            sb.slack.set_rate_limit(method, calls_a_minute)
        with tempfile.TemporaryDirectory() as d:
            probe_path = Path(d) / "probe.jsonl"
            proc, port, log_path = start_relay(sb, d, trace=trace, probe=str(probe_path) if probe else None,
                                              legacy=legacy)
            url = f"http://127.0.0.1:{port}"
            client = SlackClient(sb, url)
            try:
                for who in ("alice", "bob"):
                    client.sign_in(sb[who])
                load = Load(sb, client, url, every, seed)
                started = time.monotonic()
                load.thread.start()
                samples: list[tuple[float, dict[str, int]]] = []
                end = started + minutes * 60
                tick = threading.Event()        # never set: the sampling clock
                while time.monotonic() < end:
                    if proc.poll() is not None:
                        raise RuntimeError(f"relay exited: {log_path.read_text()[-2000:]}")
                    samples.append((time.monotonic() - started, proc_status(proc.pid)))
                    tick.wait(min(sample, max(0.0, end - time.monotonic())))
                samples.append((time.monotonic() - started, proc_status(proc.pid)))
                load.stop.set()
                load.thread.join(30)
                db_bytes = sum(f.stat().st_size for f in Path(d).glob("relay.db*"))
                db_main = (Path(d) / "relay.db").stat().st_size
                probed = probe_summary(probe_path) if probe else {}
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        after = [(t, st["VmRSS"] / 1024) for t, st in samples if t >= WARMUP_SECONDS and "VmRSS" in st]
        half = [(t, v) for t, v in after if t >= (WARMUP_SECONDS + minutes * 60) / 2]
        anon = [(t, st["RssAnon"] / 1024) for t, st in samples if t >= WARMUP_SECONDS and "RssAnon" in st]
        per_minute: dict[int, int] = {}
        for t, st in samples:
            per_minute.setdefault(int(t // 60), st.get("VmRSS", 0))
        slope = slope_per_minute(after)

        def r3(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        return {
            "minutes": minutes,
            "relay": "baseline" if legacy else "new",
            "launcher": "tracemalloc" if trace else ("probe" if probe else "relay"),
            "samples": len(samples),
            "rss_growth_mib_per_min": r3(slope),
            "rss_growth_second_half_mib_per_min": r3(slope_per_minute(half)),
            "rss_anon_growth_mib_per_min": r3(slope_per_minute(anon)),
            "rss_mib_at_minute": {m: round(kib / 1024, 1) for m, kib in sorted(per_minute.items())},
            "rss_mib_end": round(samples[-1][1].get("VmRSS", 0) / 1024, 1),
            "threads_start_end": [samples[0][1].get("Threads"), samples[-1][1].get("Threads")],
            "fds_start_end": [samples[0][1].get("fds"), samples[-1][1].get("fds")],
            "db_mib": round(db_bytes / 2**20, 2),
            "db_main_mib": round(db_main / 2**20, 2),
            "probe": probed,
            "load": load.counts,
            "slack_calls_ok": len([c for c in sb.slack.calls if c.ok]),
            "load_errors": load.errors[:5],
            "meets_target": slope is not None and slope < 0.2,
        }
    finally:
        sb.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--short", action="store_true", help="2 minutes: a smoke run of the bench")
    ap.add_argument("--every", type=float, default=0.8, help="seconds between new requests")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--trace-out", default="soak-tracemalloc.txt")
    ap.add_argument("--baseline", action="store_true",
                    help="first soak the relay as it was before its memory was bounded (same run, same load)")
    ap.add_argument("--probe", action="store_true",
                    help="run the relay through bench/_soak_relay.py and report SQLite's heap and connections")
    args = ap.parse_args()
    minutes = 2.0 if args.short else args.minutes
    trace = os.path.abspath(args.trace_out) if args.tracemalloc else None
    results = []
    if args.baseline:
        results.append(soak(minutes, args.every, args.sample, args.seed, None, args.probe, legacy=True))
    results.append(soak(minutes, args.every, args.sample, args.seed, trace, args.probe))
    print(json.dumps(results[0] if len(results) == 1 else {"results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
