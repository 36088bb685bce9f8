"""`ssrelay demo --preview`: the relay against the stand-ins, with a local web page that shows
each sandbox person's Slack (their DMs, ephemeral messages and Home tab) rendered from the Block
Kit the relay really sent to the Slack stand-in, with working buttons.

A click in the page goes to this server, which builds the `block_actions` payload Slack would
build and sends it, signed with the sandbox signing secret, to the relay's `POST /slack/events`
(`relay.sandbox.slack_client`). A panel creates, cancels and decides requests directly in the
sandbox Secret Server. The page asks `/api/state` every second and redraws what changed.

Everyone is signed in at start through the relay's real sign-in flow: their Home tab is opened
(a signed `app_home_opened`), the "Sign in to Secret Server" link on it is followed, and the
form is posted with their sandbox password.

The demo routes the Databases folder to a team channel (#db-team, `personal = true`): the page
shows its cards with their threads, and a click on a channel card acts as the person chosen in
that channel's "Clicking as" list. "Fast-forward" moves the relay's clock (its poller's and its
delivery's injectable clocks; the wall clock and the stand-ins are untouched) to the next
reminder due, so reminders can be watched without waiting.

The page is plain HTML, CSS and a little JavaScript, all inline (no external assets). Every
text from Slack or Secret Server is HTML-escaped on the server; links keep only http(s) URLs.
The server listens on loopback only, accepts only JSON POSTs and checks the Host header.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
import signal
import socket
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from . import scenario
from .slack_client import SlackClient

if TYPE_CHECKING:
    from ..runtime import Relay

log = logging.getLogger(__name__)

TEAM_CHANNEL = "C0DBTEAM"          # the demo's team channel, #db-team
TEAM_FOLDER = "\\Production\\Databases"

E = html.escape
EMOJI = {"white_check_mark": "✅", "x": "❌", "no_entry_sign": "🚫", "hourglass": "⌛",
         "hourglass_flowing_sand": "⏳", "lock": "🔒", "key": "🔑", "warning": "⚠️", "bell": "🔔",
         "wave": "👋", "mag": "🔍", "rocket": "🚀", "information_source": "ℹ️"}
_TOKEN = re.compile(r"<([^<>\n]+)>")
_EMOJI = re.compile(r":([a-z0-9_+\-]+):")
_STYLES = [(re.compile(r"(?<![\w*])\*([^*\n]+?)\*(?![\w*])"), "b"),
           (re.compile(r"(?<![\w_])_([^_\n]+?)_(?![\w_])"), "i"),
           (re.compile(r"(?<![\w~])~([^~\n]+?)~(?![\w~])"), "s"),
           (re.compile(r"`([^`\n]+?)`"), "code")]


# ---------------------------------------------------------------------- Block Kit -> HTML (pure)
def _unslack(text: str) -> str:
    """Slack's own escapes back to characters (they are HTML-escaped again on output)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _safe_url(url: str) -> str | None:
    url = _unslack(url.strip())
    return url if re.match(r"^https?://", url, re.I) else None


def _special(inner: str, names: dict[str, str]) -> str:
    if inner.startswith("!date^"):
        fallback = inner.split("|", 1)[1] if "|" in inner else inner.split("^")[1]
        return f"<time>{E(_unslack(fallback))}</time>"
    if inner.startswith("!"):
        return f"<b>@{E(inner[1:].split('|')[0])}</b>"
    if inner.startswith("@"):
        uid = inner[1:].split("|")[0]
        return f"<b>@{E(names.get(uid, uid))}</b>"
    if inner.startswith("#"):
        label = inner.split("|", 1)[1] if "|" in inner else inner[1:]
        return f"<b>#{E(_unslack(label))}</b>"
    url, _, label = inner.partition("|")
    safe = _safe_url(url)
    if safe is None:
        return E(_unslack(inner))
    return f'<a href="{E(safe, quote=True)}" target="_blank" rel="noopener noreferrer">{E(_unslack(label or url))}</a>'


def _line(text: str, names: dict[str, str]) -> str:
    specials: list[str] = []

    def hold(m: re.Match) -> str:
        specials.append(_special(m.group(1), names))
        return f"\x00{len(specials) - 1}\x00"
    text = _TOKEN.sub(hold, text)
    out = E(_unslack(text), quote=False)
    for rx, tag in _STYLES:
        out = rx.sub(rf"<{tag}>\1</{tag}>", out)   # the group's text goes in verbatim
    out = _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), out)
    return re.sub("\x00(\\d+)\x00", lambda m: specials[int(m.group(1))], out)


def mrkdwn(text: str, names: dict[str, str] | None = None) -> str:
    """Slack mrkdwn as safe HTML: links, dates, mentions, *bold* _italic_ ~strike~ `code`,
    emoji shortcodes, > quotes and line breaks. Everything else is escaped."""
    names = names or {}
    parts: list[str] = []
    for raw in (text or "").split("\n"):
        if raw.startswith(">") or raw.startswith("&gt;"):
            body = raw[1:] if raw.startswith(">") else raw[4:]
            parts.append(f'<span class="quote">{_line(body.lstrip(), names)}</span>')
        else:
            parts.append(_line(raw, names))
    return "<br>".join(parts)


def _text(obj: Any, names: dict[str, str]) -> str:
    if not isinstance(obj, dict):
        return ""
    if obj.get("type") == "mrkdwn":
        return mrkdwn(str(obj.get("text", "")), names)
    return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), E(str(obj.get("text", ""))))


def _button(el: dict, where: dict, names: dict[str, str]) -> str:
    label = _text(el.get("text"), names)
    style = el.get("style") if el.get("style") in ("primary", "danger") else ""
    if el.get("url"):
        safe = _safe_url(str(el["url"]))
        if safe:
            return (f'<a class="btn {style}" href="{E(safe, quote=True)}" target="_blank" '
                    f'rel="noopener noreferrer">{label}</a>')
    click = {**where, "action_id": str(el.get("action_id", "")), "value": str(el.get("value", "")),
             "block_id": str(where.get("block_id", ""))}
    return (f'<button type="button" class="btn {style}" data-action="{E(click["action_id"], quote=True)}" '
            f'data-click="{E(json.dumps(click), quote=True)}">{label}</button>')


def render_blocks(blocks: list | None, where: dict, names: dict[str, str] | None = None,
                  fallback: str = "") -> str:
    """Block Kit as HTML. `where` says which surface the blocks are on (person, surface, channel,
    ts): it rides along with each button so a click can be turned into Slack's payload."""
    names = names or {}
    out: list[str] = []
    for b in blocks or []:
        if not isinstance(b, dict):
            continue
        kind = b.get("type")
        here = {**where, "block_id": str(b.get("block_id", ""))}
        if kind == "header":
            out.append(f'<div class="header">{_text(b.get("text"), names)}</div>')
        elif kind == "section":
            acc = b.get("accessory") or {}
            inner = f'<div class="text">{_text(b.get("text"), names)}</div>' if b.get("text") else ""
            fields = b.get("fields") or []
            if fields:
                inner += '<div class="fields">' + "".join(
                    f'<div class="field">{_text(f, names)}</div>' for f in fields) + "</div>"
            side = _button(acc, here, names) if acc.get("type") == "button" else ""
            out.append(f'<div class="section"><div class="main">{inner}</div>{side}</div>')
        elif kind == "context":
            out.append('<div class="context">' + " ".join(
                _text(e, names) for e in b.get("elements", []) if isinstance(e, dict)) + "</div>")
        elif kind == "actions":
            out.append('<div class="actions">' + "".join(
                _button(e, here, names) for e in b.get("elements", [])
                if isinstance(e, dict) and e.get("type") == "button") + "</div>")
        elif kind == "divider":
            out.append("<hr>")
    if not out and fallback:
        out.append(f'<div class="text">{mrkdwn(fallback, names)}</div>')
    return "".join(out)


# ---------------------------------------------------------------------- the preview
class Preview:
    """Stand-ins + relay + the page server. `start()` prints its progress to `out`."""

    def __init__(self, *, port: int = 8765, out=None, approver_messages: str = "dm"):
        self.port = port
        self.out = out or sys.stdout
        self.approver_messages = approver_messages
        self.sb: scenario.Sandbox | None = None
        self.relay: Relay | None = None
        self.slack: SlackClient | None = None
        self.server: ThreadingHTTPServer | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.activity: list[str] = []
        self._lock = threading.Lock()
        self.offset = timedelta(0)     # how far "Fast-forward" has moved the relay's clock

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        with self._lock:
            self.activity.append(f"{datetime.now():%H:%M:%S} {text}")
            del self.activity[:-30]

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Preview":
        from ..runtime import Relay
        try:
            self.say("[1/6] starting the Secret Server and Slack stand-ins on loopback...")
            self.sb = sb = scenario.start()
            self.say(f"      Secret Server stand-in: {sb.ss.base_url}\n      Slack stand-in:         {sb.slack.api_url}")
            self.say("[2/6] starting the relay (HTTP on loopback, polling every second)...")
            self._tmp = tempfile.TemporaryDirectory(prefix="ssrelay-preview-")
            relay_port = _free_port()
            sb.slack.add_channel(TEAM_CHANNEL, name="db-team", members=[p.slack_id for p in sb.people.values()])
            sb.slack.scopes = (*sb.slack.scopes, "channels:read", "channels:history")
            cfg = sb.config(scenario.temp_db_path(self._tmp.name), HTTP_PORT=str(relay_port),
                            HTTP_PUBLIC_URL=f"http://127.0.0.1:{relay_port}",
                            SLACK_APPROVER_MESSAGES=self.approver_messages,
                            CHANNELS=json.dumps([{"folder": TEAM_FOLDER, "channel": TEAM_CHANNEL,
                                                  "personal": True}]))
            self.relay = relay = Relay(cfg)
            relay.poller.clock = relay.delivery.clock = self.clock
            relay.start()
            relay_url = f"http://127.0.0.1:{relay.port}"
            self.slack = slack = SlackClient(sb, relay_url)
            _wait(lambda: relay.db.execute(
                "SELECT value FROM relay_state WHERE key = 'last_successful_poll'").fetchone(), 20,
                "the relay's first poll")
            self.say(f"      relay: {relay_url} (Slack events at /slack/events, sign-in at /signin)")
            self.say("[3/6] people: rita (requester), alice and bob (approvers, group DB Approvers); "
                     "secrets: prod-db, wiki-admin")
            self.say("[4/6] signing everyone in through the relay's sign-in page (Home tab -> link -> form)...")
            for person in sb.people.values():
                slack.sign_in(person)
                self.say(f"      {person.name}: signed in")
            self.say("[5/6] seeding requests: rita asks for prod-db and wiki-admin...")
            sb.ss.create_request(sb.secrets["prod-db"], sb["rita"].ss_id, comment="Deploy hotfix 4.2.1",
                                 ticket="INC-1042")
            sb.ss.create_request(sb.secrets["wiki-admin"], sb["rita"].ss_id, comment="Fix the wiki typo")
            want = 4 if self.approver_messages == "dm" else 0
            _wait(lambda: sum(len([m for m in sb.slack.messages(sb[n].slack_id) if "approve" in json.dumps(m)])
                              for n in ("alice", "bob")) >= want, 20, "the approval messages")
            _wait(lambda: len(sb.slack.messages(TEAM_CHANNEL)) >= 2, 20, "the cards in #db-team")
            self.say("[6/6] serving the preview page...")
            self.server = _PreviewServer(("127.0.0.1", self.port), _Handler, self)
            threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                             name="ssrelay-preview", daemon=True).start()
            self.note("preview started: everyone is signed in, rita's two requests are waiting")
            return self
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.relay is not None:
            self.relay.stop()
            self.relay.ss.close()
            self.relay = None
        if self.sb is not None:
            self.sb.stop()
            self.sb = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # ------------------------------------------------------------------ time
    def clock(self) -> datetime:
        """The relay's clock: the wall clock plus what "Fast-forward" added."""
        return datetime.now(timezone.utc) + self.offset

    def forward(self) -> dict:
        """Move the relay's clock to the next reminder due (a second past it); the next poll
        sends it. Nothing scheduled: a clear error, the clock unchanged."""
        relay = self._relay()
        row = relay.db.execute("SELECT MIN(next_reminder_at) FROM reminders "
                                    "WHERE next_reminder_at IS NOT NULL").fetchone()
        if not row or not row[0]:
            raise ValueError("no reminder is scheduled: every request is decided or reminded enough")
        due = datetime.fromisoformat(row[0])
        step = max(timedelta(0), due - self.clock()) + timedelta(seconds=1)
        self.offset += step
        self.note(f"fast-forward: the relay's clock moved {step.total_seconds() / 60:.1f} min "
                  f"(now {self.offset.total_seconds() / 60:.1f} min ahead) to the next reminder")
        return {"ahead_seconds": self.offset.total_seconds()}

    def _sandbox(self) -> scenario.Sandbox:
        """The running stand-ins; the page's handlers only run between start() and stop()."""
        if self.sb is None:
            raise RuntimeError("preview not started: the sandbox is not running (call start() first)")
        return self.sb

    def _relay(self) -> Relay:
        """The running relay, set once start() has built it."""
        if self.relay is None:
            raise RuntimeError("preview not started: the relay is not running (call start() first)")
        return self.relay

    def _slack_client(self) -> SlackClient:
        """The signed Slack client towards the relay, set once the relay is up."""
        if self.slack is None:
            raise RuntimeError("preview not started: no Slack client towards the relay (call start() first)")
        return self.slack

    # ------------------------------------------------------------------ state for the page
    def names(self) -> dict[str, str]:
        sb = self._sandbox()
        users = sb.ss.world.users
        return {p.slack_id: users[p.ss_id].display_name if p.ss_id in users else p.name
                for p in sb.people.values()}

    def person_view(self, person: scenario.Person) -> dict:
        sb, names = self._sandbox(), self.names()
        uid = person.slack_id
        items = [(float(m["ts"]), "message", m) for m in sb.slack.messages(uid)]
        items += [(float(m["ts"]), "ephemeral", m) for m in sb.slack.ephemerals(uid)]
        items.sort(key=lambda x: x[0])
        msgs = []
        for _, surface, m in items:
            where = {"person": person.name, "surface": surface, "channel": m.get("channel", ""), "ts": m["ts"]}
            badge = '<div class="eph">Only visible to you</div>' if surface == "ephemeral" else ""
            edited = ' <span class="edited">(edited)</span>' if m.get("edited") else ""
            when = datetime.fromtimestamp(float(m["ts"])).strftime("%H:%M:%S")
            msgs.append(f'<div class="msg {surface}" data-ts="{E(m["ts"], quote=True)}">{badge}'
                        f'<div class="who">ssrelay <span class="time">{when}</span>{edited}</div>'
                        f'{render_blocks(m.get("blocks"), where, names, m.get("text", ""))}</div>')
        home = sb.slack.home_view(uid)
        home_html = (render_blocks(home.get("blocks"), {"person": person.name, "surface": "home"}, names)
                     if home else '<div class="context">The relay has not published a Home tab yet.</div>')
        signed_in = self.relay is not None and self.relay.interactions.sessions.has_session(uid)
        return {"name": person.name, "display": names.get(uid, person.name), "slack_id": uid,
                "signed_in": bool(signed_in),
                "messages": "".join(msgs) or '<div class="context">No messages yet.</div>',
                "home": home_html}

    def channel_view(self, channel: str, name: str) -> dict:
        """A team channel: each card, with the replies in its thread under it."""
        sb, names = self._sandbox(), self.names()
        out = []
        for m in sb.slack.messages(channel):
            if m.get("thread_ts") and m["thread_ts"] != m["ts"]:
                continue          # a reply: shown in its thread
            where = {"person": "", "surface": "channel", "channel": channel, "ts": m["ts"]}
            edited = ' <span class="edited">(edited)</span>' if m.get("edited") else ""
            when = datetime.fromtimestamp(float(m["ts"])).strftime("%H:%M:%S")
            thread = "".join(
                f'<div class="reply"><div class="who">ssrelay <span class="time">'
                f'{datetime.fromtimestamp(float(r["ts"])).strftime("%H:%M:%S")}</span></div>'
                f'{render_blocks(r.get("blocks"), {"person": "", "surface": "reply"}, names, r.get("text", ""))}</div>'
                for r in sb.slack.thread(channel, m["ts"]))
            out.append(f'<div class="msg channel" data-ts="{E(m["ts"], quote=True)}">'
                       f'<div class="who">ssrelay <span class="time">{when}</span>{edited}</div>'
                       f'{render_blocks(m.get("blocks"), where, names, m.get("text", ""))}'
                       f'<div class="thread">{thread}</div></div>')
        return {"id": channel, "name": name,
                "messages": "".join(out) or '<div class="context">No messages yet.</div>'}

    def requests_view(self) -> list[dict]:
        w = self._sandbox().ss.world
        with w.lock:
            out = []
            for r in sorted(w.requests.values(), key=lambda r: r.id, reverse=True):
                if r.removed:
                    continue
                out.append({"id": r.id, "secret": w.secrets[r.secret_id].name,
                            "requester": w.users[r.requester_id].username, "status": r.status,
                            "by": r.approver_name, "comment": r.comment})
        return out

    def state(self) -> dict:
        sb = self._sandbox()
        people = [self.person_view(p) for p in sb.people.values()]
        with self._lock:
            activity = list(self.activity)
        body = {"people": people, "channels": [self.channel_view(TEAM_CHANNEL, "db-team")],
                "requests": self.requests_view(), "activity": activity,
                "ahead_minutes": round(self.offset.total_seconds() / 60, 1),
                "secrets": sorted(sb.secrets), "requesters": [p.name for p in sb.people.values()],
                "reviewers": ["alice", "bob"]}
        body["version"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        return body

    # ------------------------------------------------------------------ actions from the page
    def click(self, data: dict) -> dict:
        """A button in a person's Slack: send Slack's signed block_actions to the relay."""
        sb, slack = self._sandbox(), self._slack_client()
        person = sb.people.get(str(data.get("person", "")))
        if person is None:
            raise ValueError("unknown person")
        surface, action_id = data.get("surface"), str(data.get("action_id", ""))
        value, block_id = str(data.get("value", "")), str(data.get("block_id", ""))
        if surface == "home":
            payload = slack.click_home(person.slack_id, action_id, value, block_id)
        elif surface == "channel":
            message = next((m for m in sb.slack.messages(str(data.get("channel", "")))
                            if m["ts"] == data.get("ts")), None)
            if message is None:
                raise ValueError("that message is gone")
            payload = slack.click_message(person.slack_id, action_id, value, block_id, message,
                                               ephemeral=False)
            payload["channel"]["name"] = "db-team"
        elif surface in ("message", "ephemeral"):
            source = (sb.slack.messages(person.slack_id) if surface == "message"
                      else sb.slack.ephemerals(person.slack_id))
            message = next((m for m in source if m["ts"] == data.get("ts")), None)
            if message is None:
                raise ValueError("that message is gone")
            payload = slack.click_message(person.slack_id, action_id, value, block_id, message,
                                               ephemeral=surface == "ephemeral")
        else:
            raise ValueError("unknown surface")
        resp = slack.send_interaction(payload)
        self.note(f"{person.name} clicked {action_id} ({surface}) -> relay answered {resp.status_code}")
        return {"status": resp.status_code}

    def ss_action(self, what: str, data: dict) -> dict:
        sb = self._sandbox()
        if what == "create":
            requester = sb.people[str(data["requester"])]
            rid = sb.ss.create_request(sb.secrets[str(data["secret"])], requester.ss_id,
                                       comment=str(data.get("comment", ""))[:500],
                                       ticket=str(data.get("ticket", ""))[:100])
            self.note(f"Secret Server: {requester.name} asked for {data['secret']} (request {rid})")
            return {"id": rid}
        rid = int(data["id"])
        if what == "cancel":
            sb.ss.cancel(rid)
            self.note(f"Secret Server: request {rid} canceled by its requester")
        elif what in ("approve", "deny"):
            by = sb.people[str(data["by"])]
            comment = str(data.get("comment") or ("Approved in Secret Server" if what == "approve"
                                                  else "Denied in Secret Server"))[:500]
            if what == "approve":
                sb.ss.approve(rid, by.ss_id, comment, expiration=datetime.now(timezone.utc) + timedelta(hours=2))
            else:
                sb.ss.deny(rid, by.ss_id, comment)
            self.note(f"Secret Server: {by.name} {what}d request {rid} in the Secret Server UI")
        else:
            raise ValueError("unknown action")
        return {"id": rid}


class _PreviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, handler, preview: Preview):
        self.preview = preview
        super().__init__(addr, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _PreviewServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):   # noqa: A002 - quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if ctype.startswith("text/html"):
            self.send_header("Content-Security-Policy",
                             "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                             "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, body: dict) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        return host in ("127.0.0.1", "localhost")

    def do_GET(self) -> None:
        if not self._host_ok():
            return self._json(403, {"error": "use http://127.0.0.1"})
        path = self.path.split("?", 1)[0]
        if path == "/":
            return self._send(200, PAGE.encode(), "text/html; charset=utf-8")
        if path == "/api/state":
            return self._json(200, self.server.preview.state())
        return self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        if not self._host_ok() or "application/json" not in (self.headers.get("Content-Type") or ""):
            return self._json(403, {"error": "JSON from the preview page only"})
        try:
            length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
            data = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(data, dict):
                raise ValueError("expected an object")
            p = self.server.preview
            path = self.path.split("?", 1)[0]
            if path == "/api/click":
                return self._json(200, p.click(data))
            if path == "/api/time/forward":
                return self._json(200, p.forward())
            if path.startswith("/api/ss/"):
                return self._json(200, p.ss_action(path.rsplit("/", 1)[1], data))
            return self._json(404, {"error": "not found"})
        except (ValueError, KeyError, TypeError) as exc:
            return self._json(400, {"error": str(exc)[:200]})
        except Exception as exc:   # the sandbox said no (e.g. deciding a request twice)
            return self._json(409, {"error": f"{type(exc).__name__}: {str(exc)[:200]}"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"preview start-up: timed out waiting for {what}")
        time.sleep(0.05)


def run_preview(args) -> int:
    if getattr(args, "log_level", "INFO").upper() == "INFO":
        logging.getLogger().setLevel(logging.WARNING)   # the page shows what happens instead
    print("ssrelay demo --preview: the relay against loopback stand-ins, seen through a local page.", flush=True)
    preview = Preview(port=args.port).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"\nOpen {preview.url} in a browser: each person's Slack, with working buttons.\n"
          "Press Ctrl-C to stop.", flush=True)
    try:
        stop.wait()
    finally:
        preview.stop()
    return 0


# ---------------------------------------------------------------------- the page
PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ssrelay preview</title>
<style>
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d1c1d;background:#f4ede4}
header{background:#3f0e40;color:#fff;padding:.7rem 1rem}header h1{font-size:1.1rem;margin:0}header p{margin:.2rem 0 0;opacity:.85;font-size:.85rem}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:1rem;padding:1rem}
.person,.panel{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.15);overflow:hidden}
.person h2,.panel h2{margin:0;padding:.6rem .8rem;font-size:1rem;background:#611f69;color:#fff;display:flex;justify-content:space-between;align-items:center}
.badge{font-size:.72rem;background:#2eb67d;border-radius:10px;padding:.1rem .5rem}.badge.out{background:#e01e5a}
.tabs{display:flex;border-bottom:1px solid #ddd}.tabs button{flex:1;border:0;background:#fafafa;padding:.45rem;cursor:pointer;font:inherit}
.tabs button[aria-selected=true]{background:#fff;border-bottom:3px solid #1264a3;font-weight:600}
.pane{padding:.6rem .8rem;max-height:70vh;overflow:auto}.pane[hidden]{display:none}
.msg{border-bottom:1px solid #eee;padding:.5rem 0}.who{font-weight:700}.time,.edited{font-weight:400;color:#616061;font-size:.8rem}
.msg.ephemeral{background:#f8f8f8;padding:.5rem;border-radius:6px;margin:.3rem 0}.eph{font-size:.75rem;color:#616061}
.header{font-weight:800;font-size:1.05rem;margin:.6rem 0 .3rem}.section{display:flex;gap:.5rem;align-items:flex-start;margin:.3rem 0}.main{flex:1}
.fields{display:grid;grid-template-columns:1fr 1fr;gap:.3rem;margin-top:.3rem}.context{color:#616061;font-size:.82rem;margin:.3rem 0}
.actions{display:flex;gap:.4rem;flex-wrap:wrap;margin:.4rem 0}.quote{display:block;border-left:4px solid #ddd;padding-left:.5rem;color:#444}
.btn{display:inline-block;border:1px solid #bbb;background:#fff;border-radius:4px;padding:.25rem .8rem;font:inherit;font-weight:600;cursor:pointer;color:#1d1c1d;text-decoration:none;white-space:nowrap}
.btn.primary{background:#007a5a;border-color:#007a5a;color:#fff}.btn.danger{background:#fff;border-color:#e01e5a;color:#e01e5a}
.btn:disabled{opacity:.5;cursor:wait}hr{border:0;border-top:1px solid #ddd}a{color:#1264a3}code{background:#f4f4f4;padding:0 .2rem}
.panel{grid-column:1/-1}.panel .pane{max-height:none}table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem;border-bottom:1px solid #eee}
form{display:flex;gap:.4rem;flex-wrap:wrap;align-items:end;margin-bottom:.6rem}label{display:flex;flex-direction:column;font-size:.8rem}
.thread{margin-left:1rem;border-left:3px solid #ddd;padding-left:.5rem}.reply{padding:.25rem 0}
.channel-as{font-size:.8rem;font-weight:400}
input,select{font:inherit;padding:.2rem}#activity{font-family:ui-monospace,monospace;font-size:.8rem;color:#444;white-space:pre-wrap}
</style></head>
<body>
<header><h1>ssrelay preview: each person's Slack</h1>
<p>Everything below was sent by the relay to the Slack stand-in. Buttons send signed Slack interactions to the relay. The panel at the bottom acts in the sandbox Secret Server.</p></header>
<main id="people" aria-live="polite"></main>
<main><section class="panel" aria-labelledby="ss-title"><h2 id="ss-title">Sandbox Secret Server</h2><div class="pane">
<form id="create"><label>Requester<select name="requester" id="requester"></select></label>
<label>Secret<select name="secret" id="secret"></select></label>
<label>Comment<input name="comment" value="Need access for a deploy"></label>
<label>Ticket<input name="ticket" value=""></label><button class="btn primary" type="submit">Create request</button></form>
<table><thead><tr><th>#</th><th>Secret</th><th>Requester</th><th>Status</th><th>In Secret Server</th></tr></thead><tbody id="requests"></tbody></table>
<p><button class="btn" id="forward" type="button">Fast-forward to the next reminder</button> <span id="ahead"></span></p>
<h3>Activity</h3><div id="activity"></div></div></section></main>
<script>
"use strict";
let version = null, tabs = {}, filled = false;
function esc(s){return String(s).replace(/[&<>"']/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));}
async function post(path, body){
  const r = await fetch(path,{method:"POST",headers:{"Content-Type":"application/json"},body:JSON.stringify(body)});
  const j = await r.json().catch(()=>({})); if(!r.ok){alert(j.error||r.status);} return j;}
function person(p){
  const tab = tabs[p.name] || "messages";
  return `<section class="person" data-person="${esc(p.name)}" aria-label="${esc(p.display)}'s Slack">
  <h2><span>${esc(p.display)} <small>(${esc(p.name)})</small></span><span class="badge ${p.signed_in?"":"out"}">${p.signed_in?"signed in to SS":"not signed in"}</span></h2>
  <div class="tabs" role="tablist"><button role="tab" data-tab="messages" aria-selected="${tab==="messages"}">Messages</button><button role="tab" data-tab="home" aria-selected="${tab==="home"}">Home</button></div>
  <div class="pane messages" ${tab==="messages"?"":"hidden"}>${p.messages}</div>
  <div class="pane home" ${tab==="home"?"":"hidden"}>${p.home}</div></section>`;}
let clickAs = {};
function channel(c, people){
  const as = clickAs[c.id] || "alice";
  return `<section class="person" data-channel="${esc(c.id)}" aria-label="#${esc(c.name)}">
  <h2><span>#${esc(c.name)}</span><label class="channel-as">Clicking as <select class="as">${people.map(p=>`<option ${p.name===as?"selected":""}>${esc(p.name)}</option>`).join("")}</select></label></h2>
  <div class="pane messages">${c.messages}</div></section>`;}
function request(r, reviewers){
  const pending = r.status === "Pending";
  const acts = pending ? `<button class="btn" data-ss="cancel" data-id="${r.id}">Cancel (as ${esc(r.requester)})</button> ` +
    reviewers.map(v=>`<button class="btn" data-ss="approve" data-id="${r.id}" data-by="${esc(v)}">Approve as ${esc(v)}</button> <button class="btn" data-ss="deny" data-id="${r.id}" data-by="${esc(v)}">Deny as ${esc(v)}</button>`).join(" ") : "";
  return `<tr data-request="${r.id}"><td>${r.id}</td><td>${esc(r.secret)}</td><td>${esc(r.requester)}</td><td class="status">${esc(r.status)}${r.by?" by "+esc(r.by):""}</td><td>${acts}</td></tr>`;}
function render(s){
  document.getElementById("people").innerHTML = s.people.map(person).join("") + s.channels.map(c=>channel(c, s.people)).join("");
  document.getElementById("ahead").textContent = s.ahead_minutes ? `the relay's clock is ${s.ahead_minutes} min ahead` : "";
  document.getElementById("requests").innerHTML = s.requests.map(r=>request(r, s.reviewers)).join("");
  document.getElementById("activity").textContent = s.activity.join("\n");
  if(!filled){filled = true;
    document.getElementById("requester").innerHTML = s.requesters.map(n=>`<option>${esc(n)}</option>`).join("");
    document.getElementById("secret").innerHTML = s.secrets.map(n=>`<option>${esc(n)}</option>`).join("");}
  document.body.dataset.version = s.version;}
async function refresh(){
  try{const r = await fetch("/api/state",{cache:"no-store"}); const s = await r.json();
    if(s.version !== version){version = s.version; render(s);}}catch(e){}}
document.addEventListener("click", async e => {
  const t = e.target.closest("[data-tab]");
  if(t){const sec = t.closest("[data-person]"); tabs[sec.dataset.person] = t.dataset.tab; version = null; refresh(); return;}
  const b = e.target.closest("button[data-click]");
  if(b){const click = JSON.parse(b.dataset.click), ch = b.closest("[data-channel]");
    if(ch){click.person = ch.querySelector("select.as").value;}
    b.disabled = true; await post("/api/click", click); refresh(); return;}
  if(e.target.id === "forward"){await post("/api/time/forward", {}); refresh(); return;}
  const s = e.target.closest("button[data-ss]");
  if(s){s.disabled = true; await post("/api/ss/"+s.dataset.ss, {id: s.dataset.id, by: s.dataset.by}); refresh();}
});
document.addEventListener("change", e => {
  const ch = e.target.closest("[data-channel]"); if(ch && e.target.matches("select.as")){clickAs[ch.dataset.channel] = e.target.value;}});
document.getElementById("create").addEventListener("submit", async e => {
  e.preventDefault(); await post("/api/ss/create", Object.fromEntries(new FormData(e.target))); refresh();});
refresh(); setInterval(refresh, 1000);
</script></body></html>
"""
