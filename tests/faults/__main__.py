"""Long mode of the fault harness: every fault kind, at least 30 SIGKILLs, a soak; prints the
report table (README "Faults and stopping").

    python -m tests.faults --long            # about 15 minutes
    python -m tests.faults                   # the short mode, as CI runs it
    python -m tests.faults --messages dm     # either mode with DM cards (rewritten in place)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # tests/: waiting.py

from .harness import FAULTS, run_harness


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__.splitlines()[0])
    p.add_argument("--long", action="store_true", help="every fault kind, >= 30 SIGKILLs, a soak")
    p.add_argument("--rounds", type=int, default=3, help="long mode: passes over every fault kind")
    p.add_argument("--kills", type=int, default=30, help="long mode: at least this many SIGKILLs")
    p.add_argument("--soak", type=float, default=600.0, help="long mode: seconds of plain load at the end")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--messages", choices=("ephemeral", "dm"), default="ephemeral",
                   help="how reviewers are asked (slack.approver_messages): ephemeral, or DM cards")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ssrelay-faults-") as tmp:
        if args.long:
            report = run_harness(FAULTS, workdir=Path(tmp), seed=args.seed, rounds=args.rounds,
                                 fault_seconds=3.0, gap_seconds=1.0, min_kills=args.kills,
                                 soak_seconds=args.soak, messages=args.messages,
                                 log=lambda s: print(s, flush=True))
        else:
            report = run_harness([k for k in FAULTS if k.short], workdir=Path(tmp), seed=args.seed,
                                 fault_seconds=1.2, gap_seconds=0.3, min_kills=2, messages=args.messages,
                                 log=lambda s: print(s, flush=True))
    print(report.table())
    if report.details():
        print(report.details())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
