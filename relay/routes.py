"""Folder rules: which requests are in a sensitive folder, and which channel a request goes to.

Pure functions. Secret Server folder paths use backslashes ("\\Production\\Databases"); a
prefix matches whole path segments, case-insensitively ("\\Prod" does not match
"\\Production"), with or without the leading backslash.
"""

from __future__ import annotations

from dataclasses import dataclass


def segments(path: str) -> tuple[str, ...]:
    """A folder path as its lower-cased segments (slashes are accepted as separators too)."""
    return tuple(s.strip().casefold() for s in path.replace("/", "\\").split("\\") if s.strip())


def under(path: str, prefix: str) -> bool:
    """Whether the folder `path` is `prefix` or inside it."""
    want = segments(prefix)
    have = segments(path)
    return bool(want) and have[:len(want)] == want


def sensitive_folder(path: str, prefixes: tuple[str, ...] | list[str]) -> bool:
    return bool(path) and any(under(path, p) for p in prefixes)


@dataclass(frozen=True)
class ChannelRoute:
    """`[[channels]]`: requests for secrets under `folder` get one card in `channel`."""

    folder: str
    channel: str
    personal: bool = False     # also tell each reviewer personally, as without a route


def route_for(path: str, routes: tuple[ChannelRoute, ...] | list[ChannelRoute]) -> ChannelRoute | None:
    """The first route whose folder holds `path` (first match wins), else None."""
    if not path:
        return None
    for r in routes:
        if under(path, r.folder):
            return r
    return None
