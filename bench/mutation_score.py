"""Mutation scores per module from mutmut's results, equivalent mutants left out (see
bench/mutation.sh). Prints one line per module and the survivors, for the next test to write."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MODULES = {"sync": "relay.sync.", "snapshot": "relay.store.snapshot.", "blocks": "relay.slack.blocks.",
           "outbox": "relay.outbox.", "config": "relay.config."}     # the package: values, schema, sections, ...
EQUIVALENTS = Path(__file__).with_name("mutation-equivalents.txt")


def results() -> dict[str, str]:
    out = subprocess.run(["mutmut", "results", "--all", "true"], check=True, capture_output=True, text=True).stdout
    states = {}
    for line in out.splitlines():
        name, _, state = line.strip().rpartition(": ")
        if name:
            states[name] = state
    return states


def mutated_line(name: str) -> str:
    """The '+' line of the mutant's diff, stripped (what the equivalents file records)."""
    diff = subprocess.run(["mutmut", "show", name], check=True, capture_output=True, text=True).stdout
    plus = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    return plus[0] if plus else ""


def equivalents() -> dict[str, str]:
    """name -> the mutated line, from lines `name | mutated line | why` (# comments)."""
    out = {}
    for line in EQUIVALENTS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, line_text, _why = (part.strip() for part in line.split(" | ", 2))
            out[name] = line_text
    return out


def main(modules: list[str]) -> int:
    states = results()
    listed = equivalents()
    for m in modules or list(MODULES):
        prefix = MODULES[m]
        mine = {n: s for n, s in states.items() if n.startswith(prefix) and s != "not checked"}
        excluded = set()
        for name, line_text in listed.items():
            if name.startswith(prefix) and name in mine:
                if mutated_line(name) == line_text:
                    excluded.add(name)
                else:
                    print(f"  stale entry in {EQUIVALENTS.name}: {name} no longer mutates {line_text!r}")
        counted = {n: s for n, s in mine.items() if n not in excluded}
        caught = sum(1 for s in counted.values() if s in ("killed", "timeout"))
        score = 100 * caught / len(counted) if counted else 0.0
        print(f"{m}: {score:.1f}% ({caught} of {len(counted)} mutants caught; {len(excluded)} equivalent excluded; "
              f"{len(mine)} mutants in all)")
        for n, s in sorted(counted.items()):
            if s not in ("killed", "timeout"):
                print(f"  {s}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
