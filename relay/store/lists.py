"""A list of ids as one SQL parameter: `x IN (SELECT value FROM json_each(?))`.

`x IN (?, ?, ...)` with one placeholder per value is a different statement text for every
length, and Python's sqlite3 keeps each text it runs prepared in its connection's statement
cache (the last 128 per connection; a statement with hundreds of placeholders holds tens of
KiB of SQLite's heap). With one connection per thread, about twenty, those caches kept the
relay's memory growing for hours under a steady load (bench/bench_soak.py). With the list
passed as one JSON parameter a query is one statement text whatever the length, so each
connection prepares it once. The same indexes are used (`EXPLAIN QUERY PLAN`: a LIST SUBQUERY
feeding the index search).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

# The right-hand side of `IN` / `NOT IN`, bound to `ids(...)`.
IN_IDS = "SELECT value FROM json_each(?)"


def ids(values: Iterable[int]) -> str:
    """The one parameter of IN_IDS: the values as a JSON array of integers."""
    return json.dumps([int(v) for v in values])
