"""`ssrelay demo`: the relay against loopback stand-ins, no credentials needed.

Starts the Secret Server and Slack stand-ins and the relay (throwaway database), creates
sample people and requests, decides and cancels some in the sandbox Secret Server, and prints
every Slack message the relay sends as it arrives. Exits 0 when the story is complete."""

from __future__ import annotations

import re
import sys
import tempfile
from datetime import datetime, timedelta, timezone

from .sandbox import scenario

_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
_LINK = re.compile(r"<([^|>]+)\|([^>]*)>")


def mrkdwn_to_text(text: str) -> str:
    text = _DATE.sub(r"\1", text)
    text = _LINK.sub(r"\2", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def render(blocks: list | None, fallback: str = "") -> list[str]:
    """Block Kit as the lines a person would read (for a terminal)."""
    lines: list[str] = []
    for b in blocks or []:
        kind = b.get("type")
        if kind == "header":
            lines.append(f"== {b['text']['text']} ==")
        elif kind == "section":
            if b.get("text"):
                lines.append(mrkdwn_to_text(b["text"]["text"]))
            for f in b.get("fields") or []:
                lines.append("  " + mrkdwn_to_text(f["text"]).replace("\n", ": ", 1))
        elif kind == "context":
            lines.append("  " + " ".join(mrkdwn_to_text(e.get("text", "")) for e in b.get("elements", [])))
        elif kind == "actions":
            lines.append("  " + "  ".join(f"[{e['text']['text']}]" for e in b.get("elements", [])))
        elif kind == "divider":
            lines.append("  ---")
    return lines or [mrkdwn_to_text(fallback)]


class Printer:
    """Prints each Slack message the stand-in accepts, as it arrives."""

    SHOWN = ("chat.postMessage", "chat.postEphemeral", "chat.update")

    def __init__(self, sb: scenario.Sandbox, out=sys.stdout):
        self.sb, self.out = sb, out
        self.names = {p.slack_id: p.name for p in sb.people.values()}
        self.dms = {sb.slack.dm_channel(p.slack_id): p.name for p in sb.people.values()}
        self.seen = 0

    def addressee(self, user: str | None, channel: str | None) -> str | None:
        """Who a message went to: the person's name for a user id, a DM channel or a person's own
        channel, else the channel id as sent."""
        if user is not None and user in self.names:
            return self.names[user]
        if channel is None:
            return None
        return self.names.get(channel) or self.dms.get(channel, channel)

    def show_new(self) -> int:
        calls = [c for c in self.sb.slack.calls if c.done]
        shown = 0
        for c in calls[self.seen:]:
            if c.method in self.SHOWN and c.ok:
                who = self.addressee(c.args.get("user"), c.args.get("channel"))
                verb = {"chat.postMessage": "DM to", "chat.postEphemeral": "ephemeral to",
                        "chat.update": "card of"}[c.method]
                print(f"\n--- Slack {c.method}: {verb} {who} ---", file=self.out)
                for line in render(c.args.get("blocks"), c.args.get("text", "")):
                    print("    " + line.replace("\n", "\n      "), file=self.out)
                shown += 1
        self.seen = len(calls)
        self.out.flush()
        return shown


def run_demo(args) -> int:
    import logging
    from .runtime import Relay
    timeout = float(getattr(args, "seconds", 60.0))
    if getattr(args, "log_level", "INFO").upper() == "INFO":
        logging.getLogger().setLevel(logging.WARNING)   # the demo prints the messages instead
    print("ssrelay demo: starting the Secret Server and Slack stand-ins on loopback...", flush=True)
    platform = getattr(args, "flavour", "password") == "platform"
    sb = scenario.start(platform=platform)
    tmp = tempfile.TemporaryDirectory(prefix="ssrelay-demo-")
    relay = None
    try:
        cfg = sb.config(scenario.temp_db_path(tmp.name), SLACK_APPROVER_MESSAGES="dm")
        relay = Relay(cfg).start(http=False)
        printer = Printer(sb)
        if platform:
            print(f"  Delinea Platform stand-in: {sb.ss.platform_url} (the relay signs in as its service "
                  f"user and finds the vault through the vault broker)", flush=True)
        print(f"  Secret Server stand-in: {sb.ss.base_url}\n  Slack stand-in:         {sb.slack.api_url}\n"
              f"  people: rita (requester), alice and bob (approvers, DM cards)", flush=True)

        def step(title: str, count: int, method: str | None = None) -> None:
            print(f"\n>>> {title}", flush=True)
            deadline = datetime.now(timezone.utc) + timedelta(seconds=timeout)
            target = len([c for c in sb.slack.calls if c.ok and c.method in Printer.SHOWN]) + count
            while True:
                done = len([c for c in sb.slack.calls if c.ok and c.method in Printer.SHOWN])
                printer.show_new()
                if done >= target:
                    return
                left = (deadline - datetime.now(timezone.utc)).total_seconds()
                if left <= 0:
                    raise TimeoutError(f"demo step did not complete: {title}")
                try:
                    sb.slack.wait_for(predicate=lambda c: c.method in Printer.SHOWN and c.ok is True,
                                      count=target, timeout=min(left, 1.0))
                except TimeoutError:
                    pass

        r1 = sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment="Deploy hotfix 4.2.1",
                                  ticket="INC-1042")
        r2 = sb.ss.create_request(sb.secrets["wiki-admin"], sb["rita"].ss_id, comment="Fix the <!channel> typo")
        step("Rita asks for prod-db and wiki-admin: Alice and Bob each get an approval card, "
             "Rita a confirmation of where each request went", 6)
        sb.ss.approve(r1, sb["bob"].ss_id, "Go ahead, 2 hours", expiration=datetime.now(timezone.utc) + timedelta(hours=2))
        step("Bob approves prod-db in Secret Server: Rita is told, both cards change in place", 3)
        sb.ss.cancel(r2)
        step("Rita cancels wiki-admin: the reviewers' cards say so", 2)
        print("\nDemo complete: every message above was sent by the relay through the Slack Web API "
              "to the stand-in.", flush=True)
        return 0
    finally:
        if relay:
            relay.stop()
        sb.stop()
        tmp.cleanup()
