"""Settings nobody reads: unknown keys of the file and unknown `SSRELAY_*` variables, each
reported with the closest known name ("did you mean")."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from .schema import ENV_PREFIX, known_variables


def _did_you_mean(name: str, candidates: Iterable[str], prefix: str = "") -> str:
    """"; did you mean X?" for the closest candidate, compared without their common prefix
    (every variable starts with SSRELAY_, which would make anything look close)."""
    by_rest = {c[len(prefix):]: c for c in candidates if c.startswith(prefix)}
    close = difflib.get_close_matches(name[len(prefix):], sorted(by_rest), n=1, cutoff=0.6)
    return f"; did you mean {by_rest[close[0]]}?" if close else ""


def unknown_key(name: str, candidates: Iterable[str], prefix: str = "") -> str:
    """The one wording for a setting nobody reads, in the file or the environment."""
    return "unknown setting" + (_did_you_mean(name, candidates, prefix) or " (config.example.toml lists every one)")


def unknown_environment(environ: Mapping[str, str]) -> list[str]:
    """One line per `SSRELAY_*` variable that is not a setting: a typo would otherwise be
    silently ignored while the default applies."""
    known = known_variables()
    return [f"{name}: {unknown_key(name, known, ENV_PREFIX)} (ignored)"
            for name in sorted(environ) if name.startswith(ENV_PREFIX) and name not in known]
