"""Block Kit validation: the limits Slack enforces on message and view blocks."""

from __future__ import annotations

from typing import Any

from .args import _err, _text_of
from .limits import (
    ACTION_ID_MAX,
    ACTIONS_ELEMENTS_MAX,
    BLOCK_ID_MAX,
    BUTTON_TEXT_MAX,
    BUTTON_VALUE_MAX,
    CONTEXT_ELEMENTS_MAX,
    HEADER_TEXT_MAX,
    SECTION_FIELD_TEXT_MAX,
    SECTION_FIELDS_MAX,
    SECTION_TEXT_MAX,
)


def _validate_blocks(blocks: Any, max_blocks: int, pointer: str, error: str = "invalid_blocks") -> None:
    """Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks); raises ``error`` with Slack-style messages."""
    if not isinstance(blocks, list):
        raise _err("invalid_blocks_format" if error == "invalid_blocks" else error, "must be an array", f"/{pointer}")
    if len(blocks) > max_blocks:
        raise _err(error, f"no more than {max_blocks} items allowed", f"/{pointer}")

    def max_len(value: Any, limit: int, where: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            raise _err(error, f"must be less than {limit + 1} characters", where)

    def check_button(el: dict, where: str) -> None:
        max_len(_text_of(el.get("text")), BUTTON_TEXT_MAX, f"{where}/text/text")
        max_len(el.get("value"), BUTTON_VALUE_MAX, f"{where}/value")
        max_len(el.get("action_id"), ACTION_ID_MAX, f"{where}/action_id")

    def check_element(el: Any, where: str) -> None:
        if not isinstance(el, dict) or not isinstance(el.get("type"), str):
            raise _err(error, "missing required field: type", where)
        if el["type"] == "button":
            check_button(el, where)
        else:
            max_len(el.get("action_id"), ACTION_ID_MAX, f"{where}/action_id")

    for i, block in enumerate(blocks):
        where = f"/{pointer}/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str) or not block.get("type"):
            raise _err(error, "missing required field: type", where)
        max_len(block.get("block_id"), BLOCK_ID_MAX, f"{where}/block_id")
        kind = block["type"]
        if kind == "section":
            text = _text_of(block.get("text"))
            fields = block.get("fields")
            if text is None and not fields:
                raise _err(error, "must provide text or fields", where)
            max_len(text, SECTION_TEXT_MAX, f"{where}/text/text")
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > SECTION_FIELDS_MAX:
                    raise _err(error, f"no more than {SECTION_FIELDS_MAX} items allowed", f"{where}/fields")
                for j, f in enumerate(fields):
                    max_len(_text_of(f), SECTION_FIELD_TEXT_MAX, f"{where}/fields/{j}/text")
            if block.get("accessory") is not None:
                check_element(block["accessory"], f"{where}/accessory")
        elif kind == "header":
            text = _text_of(block.get("text"))
            if text is None:
                raise _err(error, "missing required field: text", where)
            max_len(text, HEADER_TEXT_MAX, f"{where}/text/text")
        elif kind == "actions":
            els = block.get("elements")
            if not isinstance(els, list) or not els:
                raise _err(error, "missing required field: elements", where)
            if len(els) > ACTIONS_ELEMENTS_MAX:
                raise _err(error, f"no more than {ACTIONS_ELEMENTS_MAX} items allowed", f"{where}/elements")
            for j, el in enumerate(els):
                check_element(el, f"{where}/elements/{j}")
        elif kind == "context":
            els = block.get("elements")
            if not isinstance(els, list) or not els:
                raise _err(error, "missing required field: elements", where)
            if len(els) > CONTEXT_ELEMENTS_MAX:
                raise _err(error, f"no more than {CONTEXT_ELEMENTS_MAX} items allowed", f"{where}/elements")
        elif kind == "input":
            if block.get("label") is None or block.get("element") is None:
                raise _err(error, "missing required field: label/element", where)
            max_len(_text_of(block.get("label")), 2000, f"{where}/label/text")
            check_element(block["element"], f"{where}/element")
