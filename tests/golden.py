"""Golden files: whole Block Kit payloads kept as JSON under tests/golden/.

A test calls `assert_golden("name", payload)`; the payload must equal tests/golden/name.json.
After an intended change to a builder, regenerate the files and review the diff:

    SSRELAY_REGEN_GOLDEN=1 python -m pytest -q tests/test_block_payloads.py
    git diff tests/golden/

Regeneration writes the files and still compares, so a run with the variable set never fails
because of a stale golden file; never commit without reading the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("SSRELAY_REGEN_GOLDEN") == "1"


def assert_golden(name: str, payload: Any) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if REGENERATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: run with SSRELAY_REGEN_GOLDEN=1 and review it"
    # JSON round trip: tuples become lists, as Slack receives them.
    assert json.loads(text) == json.loads(path.read_text(encoding="utf-8")), f"{name} differs from {path}"
