"""The README's "Security defences" list names tests that exist: a renamed or deleted test
must take its line with it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_every_test_the_security_defences_name_exists():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Security defences"):]
    section = section[:section.index("\n## ", 1)]
    named, current = [], None
    for file, test in re.findall(r"`(tests/[\w/]+\.py)?::(test_\w+)`", section):
        current = file or current
        named.append((current, test))
    assert len(named) >= 20
    for file, test in named:
        assert re.search(rf"^def {test}\(", (ROOT / file).read_text(), re.MULTILINE), f"{file}::{test} does not exist"
