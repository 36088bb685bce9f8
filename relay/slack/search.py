"""Block Kit for secrets in Slack: pure builders for the search modal and its results, the
launch modals (picker, prompt, result) and the request-access modal, plus the rows the Home
tab's Recent Secrets and the requester's "approved" message reuse.

Buttons carry ids only (a secret id, "secret:launcher"): every click is re-read from SS as the
clicking person. Names, folders and templates are escaped; nothing here ever holds a secret
field value (the relay never asks SS for one).
"""

from __future__ import annotations

import json
from typing import Callable, Iterable

from ..model import Launcher, Secret
from .blocks import (BUTTON_TEXT_LIMIT, CONTEXT_TEXT_LIMIT, SECTION_TEXT_LIMIT, escape, link, plain,
                     truncate)

# ids Slack sends back
SHORTCUT = "secretsearch"              # the global shortcut's callback id
SEARCH_CALLBACK = "ssrelay_search"
SEARCH_BLOCK = "query"
SEARCH_INPUT = "text"
LAUNCH = "launch_secret"               # value: secret id
LAUNCH_PICK = "launch_pick"            # value: "<secret id>:<launcher id>"
LAUNCH_OPEN = "launch_open"            # URL button to the launch link (ack only)
LAUNCH_LINK = "launch_link"            # block with a launch link only SS's launcher app opens
SECRET_OPEN = "secret_open"            # URL button to the secret's page (ack only)
PROMPT_CALLBACK = "ssrelay_launch_prompt"
PROMPT_BLOCK = "prompt"
PROMPT_INPUT = "value"
REQUEST_ACCESS = "request_access"      # value: secret id
REQUEST_CALLBACK = "ssrelay_request_access"
COMMENT_BLOCK = "comment"
COMMENT_INPUT = "comment"
TICKET_BLOCK = "ticket"
TICKET_INPUT = "ticket"
SIGNIN = "signin"                      # same action id as the Home tab's sign-in button (home imports this module)

TITLE_LIMIT = 24
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
MAX_OPTIONS = 100
MAX_LAUNCHER_BUTTONS = 25


# ---------------------------------------------------------------------- small parts
def _section(text: str, **extra) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_TEXT_LIMIT)}, **extra}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, CONTEXT_TEXT_LIMIT)}]}


def _modal(title: str, blocks: list, *, callback_id: str = "", submit: str = "", close: str = "Close",
           metadata: dict | None = None) -> dict:
    view: dict = {"type": "modal", "title": plain(title, TITLE_LIMIT), "close": plain(close, TITLE_LIMIT),
                  "blocks": blocks}
    if callback_id:
        view["callback_id"] = callback_id
    if submit:
        view["submit"] = plain(submit, TITLE_LIMIT)
    if metadata is not None:
        view["private_metadata"] = json.dumps(metadata, sort_keys=True)[:3000]
    return view


def launch_button(secret_id: int, text: str = "Launch") -> dict:
    return {"type": "button", "action_id": LAUNCH, "value": str(int(secret_id)),
            "text": plain(text, BUTTON_TEXT_LIMIT)}


def request_button(secret_id: int) -> dict:
    return {"type": "button", "action_id": REQUEST_ACCESS, "value": str(int(secret_id)),
            "text": plain("Request access", BUTTON_TEXT_LIMIT)}


def _name(secret: Secret, secret_url: Callable[[int], str] | None) -> str:
    return link(secret_url(secret.id), secret.name) if secret_url else f"*{escape(secret.name)}*"


def secret_lines(secret: Secret, secret_url: Callable[[int], str] | None) -> str:
    """Name (a link to its page), folder, template, and whether it needs approval."""
    facts = [escape(secret.folder_path) if secret.folder_path else "No folder"]
    if secret.template_name:
        facts.append(escape(secret.template_name))
    lines = [_name(secret, secret_url), " · ".join(facts)]
    if secret.requires_approval:
        lines.append(":lock: Needs approval")
    return "\n".join(lines)


def signin_blocks(url: str, why: str) -> list[dict]:
    return [_section(f"{why} The link works once, for 10 minutes.",
                     accessory={"type": "button", "action_id": SIGNIN, "url": url, "style": "primary",
                                "text": plain("Sign in to Secret Server", BUTTON_TEXT_LIMIT)})]


# ---------------------------------------------------------------------- search
def _search_input(initial: str = "") -> dict:
    element = {"type": "plain_text_input", "action_id": SEARCH_INPUT, "max_length": 200,
               "placeholder": plain("Part of a secret's name", 150)}
    if initial:
        element["initial_value"] = initial[:200]
    return {"type": "input", "block_id": SEARCH_BLOCK, "label": plain("Search secrets", 2000),
            "element": element}


def search_modal(initial: str = "") -> dict:
    """The modal the shortcut opens at once: one text input."""
    return _modal("Search secrets", [_search_input(initial)], callback_id=SEARCH_CALLBACK, submit="Search")


def searching_modal(text: str) -> dict:
    return _modal("Search secrets", [_section(f":mag: Searching Secret Server for “{escape(text)}”…")],
                  callback_id=SEARCH_CALLBACK)


def results_modal(text: str, secrets: Iterable[Secret], secret_url: Callable[[int], str] | None) -> dict:
    """The top matches (each with its page link, Launch and Request access where they apply),
    and the input again for another search."""
    found = list(secrets)
    blocks: list[dict] = [_search_input(text), {"type": "divider"}]
    if not found:
        blocks.append(_section(f"No secret you can see in Secret Server matches “{escape(text)}”."))
    for s in found:
        blocks.append(_section(secret_lines(s, secret_url), block_id=f"secret:{s.id}"))
        buttons = []
        if s.has_launcher:
            buttons.append(launch_button(s.id))
        if s.requires_approval:
            buttons.append(request_button(s.id))
        if buttons:
            blocks.append({"type": "actions", "block_id": f"secret_actions:{s.id}", "elements": buttons})
    if found:
        blocks.append(_context(f"The top {len(found)} match{'es' if len(found) != 1 else ''} you can see "
                               f"in Secret Server."))
    return _modal("Search secrets", blocks, callback_id=SEARCH_CALLBACK, submit="Search")


def message_modal(title: str, text: str, *, secret: Secret | None = None,
                  secret_url: Callable[[int], str] | None = None, extra: list | None = None) -> dict:
    """A modal that only says something (an error, a reason, a confirmation)."""
    blocks = [_section(text)]
    if secret is not None:
        blocks.append(_section(secret_lines(secret, secret_url)))
    blocks += extra or []
    return _modal(title, blocks)


def signin_modal(title: str, url: str, why: str) -> dict:
    return _modal(title, signin_blocks(url, why))


def loading_modal(title: str, text: str = "One moment…") -> dict:
    return _modal(title, [_section(f":hourglass_flowing_sand: {escape(text)}")])


# ---------------------------------------------------------------------- launch
def launcher_picker(secret: Secret, launchers: Iterable[Launcher], secret_url) -> dict:
    """Several launchers: one button each."""
    items = list(launchers)[:MAX_LAUNCHER_BUTTONS]
    buttons = [{"type": "button", "action_id": LAUNCH_PICK, "value": f"{secret.id}:{x.launcher_id}",
                "text": plain(x.name or f"Launcher {x.launcher_id}", BUTTON_TEXT_LIMIT)} for x in items]
    blocks = [_section(secret_lines(secret, secret_url)), _section("Pick a launcher:"),
              {"type": "actions", "block_id": f"launchers:{secret.id}", "elements": buttons}]
    return _modal("Launch", blocks)


def prompt_modal(secret: Secret, launcher: Launcher, secret_url, *, error: str = "", initial: str = "") -> dict:
    """A prompted launcher: the host to connect to (a select when the hosts are restricted)."""
    hosts = list(launcher.restricted_hosts)[:MAX_OPTIONS]
    if hosts:
        element: dict = {"type": "static_select", "action_id": PROMPT_INPUT,
                         "placeholder": plain("Pick a host", 150),
                         "options": [{"text": plain(h, OPTION_TEXT_LIMIT), "value": h[:OPTION_VALUE_LIMIT]}
                                     for h in hosts]}
    else:
        element = {"type": "plain_text_input", "action_id": PROMPT_INPUT, "max_length": 255,
                   "placeholder": plain("Host name or address", 150)}
        if initial:
            element["initial_value"] = initial[:255]
    blocks = [_section(secret_lines(secret, secret_url)),
              _context(f"{escape(launcher.name or 'This launcher')} asks where to connect.")]
    if error:
        blocks.append(_section(f":warning: {escape(error)}"))
    blocks.append({"type": "input", "block_id": PROMPT_BLOCK, "label": plain("Host", 2000), "element": element})
    return _modal("Launch", blocks, callback_id=PROMPT_CALLBACK, submit="Launch",
                  metadata={"secret_id": secret.id, "launcher_id": launcher.launcher_id})


def launched_modal(secret: Secret, launcher: Launcher | None, url: str, secret_url) -> dict:
    name = escape(launcher.name) if launcher and launcher.name else "The launcher"
    blocks = [_section(secret_lines(secret, secret_url)),
              _section(f":rocket: {name} is ready. Open the link to start the session "
                       f"(Secret Server's launcher runs it on your computer).",
                       accessory={"type": "button", "action_id": LAUNCH_OPEN, "url": url, "style": "primary",
                                  "text": plain("Open launcher", BUTTON_TEXT_LIMIT)})]
    return _modal("Launch", blocks)


def handoff_modal(secret: Secret, launcher: Launcher | None, url: str, secret_url) -> dict:
    """A launch only Secret Server's launcher app (protocol handler) can open: the link as text
    to open or copy on a computer with the launcher installed, and the secret's page, where
    Launch works in the browser."""
    name = escape(launcher.name) if launcher and launcher.name else "The launcher"
    blocks = [_section(secret_lines(secret, secret_url)),
              _section(f":rocket: {name} is ready. Slack cannot start it for you: open this link on a "
                       f"computer with Secret Server's launcher installed, or open the secret in Secret "
                       f"Server and click Launch there.", block_id=LAUNCH_LINK),
              _section(f"`{url.replace('`', '%60')}`")]
    if secret_url:
        blocks.append({"type": "actions", "block_id": f"handoff:{secret.id}", "elements": [
            {"type": "button", "action_id": SECRET_OPEN, "url": secret_url(secret.id),
             "text": plain("Open in Secret Server", BUTTON_TEXT_LIMIT)}]})
    return _modal("Launch", blocks)


def nothing_modal(secret: Secret | None, secret_id: int, reason: str, secret_url, *,
                  offer_request: bool = False) -> dict:
    """Nothing launchable: the plain reason and the secret's page."""
    blocks = [_section(f":information_source: {escape(reason)}")]
    if secret is not None:
        blocks.append(_section(secret_lines(secret, secret_url)))
    buttons = []
    if secret_url:
        buttons.append({"type": "button", "action_id": SECRET_OPEN, "url": secret_url(secret_id),
                        "text": plain("Open in Secret Server", BUTTON_TEXT_LIMIT)})
    if offer_request:
        buttons.append(request_button(secret_id))
    if buttons:
        blocks.append({"type": "actions", "block_id": f"nothing:{secret_id}", "elements": buttons})
    return _modal("Launch", blocks)


# ---------------------------------------------------------------------- request access
def request_modal(secret_id: int, name: str, *, needs_ticket: bool = False, errors: dict | None = None,
                  comment: str = "", ticket: str = "") -> dict:
    """The comment (and ticket number) for an access request."""
    errors = errors or {}
    c_el: dict = {"type": "plain_text_input", "action_id": COMMENT_INPUT, "multiline": True, "max_length": 1000}
    if comment:
        c_el["initial_value"] = comment[:1000]
    t_el: dict = {"type": "plain_text_input", "action_id": TICKET_INPUT, "max_length": 100}
    if ticket:
        t_el["initial_value"] = ticket[:100]
    blocks = [_section(f"Ask for access to *{escape(name)}*. Its approvers are told in Slack; you hear "
                       f"here when they decide.")]
    for key in ("comment", "ticket"):
        if errors.get(key):
            blocks.append(_section(f":warning: {escape(errors[key])}"))
    blocks.append({"type": "input", "block_id": COMMENT_BLOCK, "label": plain("Why do you need access?", 2000),
                   "element": c_el})
    blocks.append({"type": "input", "block_id": TICKET_BLOCK, "optional": not needs_ticket,
                   "label": plain("Ticket number" if needs_ticket else "Ticket number (if your team uses one)", 2000),
                   "element": t_el})
    return _modal("Request access", blocks, callback_id=REQUEST_CALLBACK, submit="Request",
                  metadata={"secret_id": int(secret_id), "name": name[:200], "needs_ticket": bool(needs_ticket)})


def request_sent_modal(name: str, request_id: int) -> dict:
    return _modal("Request access", [_section(
        f":white_check_mark: Your request for *{escape(name)}* was sent (request #{int(request_id)}). "
        f"Its approvers are told in Slack; you hear here when they decide.")])


# ---------------------------------------------------------------------- Home tab rows
def recent_rows(secrets: Iterable[Secret], secret_url) -> list[dict]:
    """Recent Secrets on the Home tab: each name a link, Launch where the secret has launchers."""
    rows = []
    for s in secrets:
        block = _section(secret_lines(s, secret_url), block_id=f"recent:{s.id}")
        if s.has_launcher:
            block["accessory"] = launch_button(s.id)
        rows.append(block)
    return rows
