"""The stand-in's API error and the helpers that read a Web API call's arguments."""

from __future__ import annotations

import json
from typing import Any


class _ApiError(Exception):
    def __init__(self, error: str, *, messages: list[str] | None = None, extra: dict | None = None):
        super().__init__(error)
        self.error = error
        self.messages = messages
        self.extra = extra or {}


def _truthy(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if v is None:
        return False
    return str(v).strip().lower() in ("1", "true", "yes", "on")


def _text_of(obj: Any) -> str | None:
    """The string of a text object ({"type":..,"text":..}) or a bare string."""
    if isinstance(obj, dict):
        t = obj.get("text")
        return t if isinstance(t, str) else None
    if isinstance(obj, str):
        return obj
    return None


def _redacted(args: dict) -> dict:
    out = {k: v for k, v in args.items() if k != "token"}
    for key in ("blocks", "view"):
        if isinstance(out.get(key), str):
            try:
                out[key] = json.loads(out[key])
            except ValueError:
                pass
    return out


def _require(args: dict, name: str, error: str = "invalid_arguments") -> Any:
    v = args.get(name)
    if v is None or v == "":
        raise _ApiError(error, messages=[f"[ERROR] missing required field: {name}"])
    return v


def _json_arg(args: dict, name: str, error: str) -> Any:
    v = args.get(name)
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            raise _ApiError(error, messages=[f"[ERROR] {name} is not valid JSON"]) from None
    return v


def _err(error: str, msg: str, pointer: str) -> _ApiError:
    return _ApiError(error, messages=[f"[ERROR] {msg} [json-pointer:{pointer}]"])
