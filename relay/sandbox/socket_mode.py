"""A loopback stand-in for Slack's Socket Mode WebSocket endpoint.

A minimal RFC 6455 server (stdlib sockets and threads): text frames, masked
client frames, ping/pong, close. It speaks Slack's Socket Mode protocol
(https://docs.slack.dev/apis/events-api/using-socket-mode): ``hello`` on connect, envelopes ``{envelope_id, type, payload,
accepts_response_payload, retry_attempt, retry_reason}``, acks
``{"envelope_id": ..., "payload": {...}}``, and ``disconnect`` messages after
which the client must fetch a new URL through ``apps.connections.open``.

Wire it to the Web API stand-in so that clients find it::

    with SlackStandIn() as slack, SocketModeStandIn() as sm:
        slack.attach_socket_mode(sm)
        client = SocketModeClient(app_token="xapp-1-sandbox", web_client=WebClient(base_url=slack.api_url))
        client.connect()
        sm.wait_for_connection()
        env = sm.send_interactive({"type": "block_actions", ...})
        ack = sm.wait_for_ack(env)
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import socket
import struct
import threading
import time
import uuid

__all__ = ["SocketModeStandIn"]

log = logging.getLogger(__name__)

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_MAX_HANDSHAKE = 16 * 1024
_MAX_FRAME = 16 * 1024 * 1024


def _frame(opcode: int, payload: bytes) -> bytes:
    """A server frame: FIN set, never masked (RFC 6455 §5.1)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n <= 125:
        head += bytes([n])
    elif n <= 0xFFFF:
        head += struct.pack("!BH", 126, n)
    else:
        head += struct.pack("!BQ", 127, n)
    return head + payload


class _Conn:
    def __init__(self, server: "SocketModeStandIn", sock: socket.socket, number: int):
        self.server = server
        self.sock = sock
        self.number = number
        self.alive = True
        self._send_lock = threading.Lock()
        self._buf = b""

    # -- IO

    def send(self, opcode: int, payload: bytes) -> None:
        with self._send_lock:
            if not self.alive:
                raise ConnectionError("connection closed")
            self.sock.sendall(_frame(opcode, payload))

    def send_json(self, message: dict) -> None:
        self.send(OP_TEXT, json.dumps(message).encode("utf-8"))

    def _recv_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                if self.server._stopping.is_set() or not self.alive:
                    raise ConnectionError("stopping") from None
                continue
            if not chunk:
                raise ConnectionError("peer closed")
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _read_frame(self) -> tuple[bool, int, bytes]:
        b1, b2 = self._recv_exact(2)
        fin, opcode = bool(b1 & 0x80), b1 & 0x0F
        masked, n = bool(b2 & 0x80), b2 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._recv_exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._recv_exact(8))
        if n > _MAX_FRAME:
            raise ConnectionError("frame too large")
        key = self._recv_exact(4) if masked else b""
        data = self._recv_exact(n) if n else b""
        if masked:
            data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
        return fin, opcode, data

    # -- lifecycle

    def handshake(self) -> bool:
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > _MAX_HANDSHAKE:
                return False
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                if self.server._stopping.is_set():
                    return False
                continue
            if not chunk:
                return False
            self._buf += chunk
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        key = headers.get("sec-websocket-key")
        path = parts[1] if len(parts) > 1 else ""
        if (
            len(parts) < 3
            or parts[0] != "GET"
            or not path.startswith("/link")
            or "websocket" not in headers.get("upgrade", "").lower()
            or not key
        ):
            body = b"Bad Request"
            self.sock.sendall(
                b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            return False
        accept = base64.b64encode(hashlib.sha1(key.encode("latin-1") + _GUID).digest()).decode()
        self.sock.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode("latin-1")
        )
        return True

    def run(self) -> None:
        try:
            self.sock.settimeout(0.2)
            if not self.handshake():
                return
            self.server._opened(self)
            message = bytearray()
            while self.alive:
                fin, opcode, data = self._read_frame()
                if opcode == OP_PING:
                    self.send(OP_PONG, data)
                elif opcode == OP_PONG:
                    pass
                elif opcode == OP_CLOSE:
                    try:
                        self.send(OP_CLOSE, data[:2] if len(data) >= 2 else b"")
                    except OSError:
                        pass
                    break
                elif opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                    message += data
                    if fin:
                        self.server._on_text(self, bytes(message))
                        message = bytearray()
        except (ConnectionError, OSError, ValueError):
            pass
        except Exception:  # a stand-in bug: make it visible, still close the socket
            log.exception("socket mode stand-in connection %d failed", self.number)
        finally:
            self.close()

    def close(self, code: int | None = None, reason: str = "") -> None:
        if code is not None and self.alive:
            try:
                self.send(OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8"))
            except OSError:
                pass
        with self._send_lock:
            was_alive, self.alive = self.alive, False
        if was_alive:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.server._closed(self)


class SocketModeStandIn:
    """Socket Mode endpoint at ``ws://host:port/link`` (see module docstring)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, app_id: str = "A0SANDBOX"):
        self.host = host
        self._port = port
        self.app_id = app_id
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: list[_Conn] = []
        self._total = 0
        self._acks: dict[str, dict] = {}
        self._received: list[dict] = []
        self._sent: list[dict] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "SocketModeStandIn":
        if self._listener is not None:
            return self
        self._stopping.clear()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.listen(16)
        sock.settimeout(0.1)
        self._listener = sock
        self._accept_thread = threading.Thread(target=self._accept_loop, name="socket-mode-standin", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._accept_thread is not None:  # no new connections from here on
            self._accept_thread.join(timeout=5)
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.close(1001, "going away")

    def __enter__(self) -> "SocketModeStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("SocketModeStandIn is not started")
        return self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        """What ``apps.connections.open`` returns."""
        return f"ws://{self.host}:{self.port}/link"

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with self._lock:
                self._total += 1
                number = self._total
            conn = _Conn(self, sock, number)
            threading.Thread(target=conn.run, name=f"socket-mode-conn-{number}", daemon=True).start()

    # ------------------------------------------------------------------ connection events

    def _opened(self, conn: _Conn) -> None:
        with self._cond:
            self._conns.append(conn)
            live = len(self._conns)
            self._cond.notify_all()
        conn.send_json(
            {
                "type": "hello",
                "num_connections": live,
                "debug_info": {
                    "host": "sandbox-link",
                    "build_number": 1,
                    "approximate_connection_time": 3600,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )

    def _closed(self, conn: _Conn) -> None:
        with self._cond:
            if conn in self._conns:
                self._conns.remove(conn)
            self._cond.notify_all()

    def _on_text(self, conn: _Conn, data: bytes) -> None:
        try:
            message = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            message = {"_raw": data.decode("utf-8", "replace")}
        with self._cond:
            self._received.append(message)
            if isinstance(message, dict) and message.get("envelope_id"):
                self._acks[str(message["envelope_id"])] = message
            self._cond.notify_all()

    # ------------------------------------------------------------------ test API

    @property
    def connections(self) -> int:
        """Live (handshaken, not closed) connections."""
        with self._lock:
            return len(self._conns)

    @property
    def total_connections(self) -> int:
        """Connections accepted since start (grows on every reconnect)."""
        with self._lock:
            return self._total

    @property
    def received(self) -> list[dict]:
        """Every text message clients sent (acks included), oldest first."""
        with self._lock:
            return list(self._received)

    @property
    def sent(self) -> list[dict]:
        """Every envelope sent to clients, oldest first."""
        with self._lock:
            return list(self._sent)

    def wait_for_connection(self, timeout: float = 5.0, *, total: int | None = None) -> int:
        """Wait until a client is connected (and, with ``total``, until that many
        connections have been opened since start); return the live count."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                opened = sum(1 for c in self._conns if c.alive)
                if opened and (total is None or self._total >= total):
                    return opened
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no Socket Mode connection within {timeout}s "
                        f"(live={len(self._conns)}, opened since start={self._total}, wanted total={total})"
                    )
                self._cond.wait(remaining)

    def _pick(self, timeout: float) -> _Conn:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                live = [c for c in self._conns if c.alive]
                if live:
                    return live[-1]  # Slack sends each envelope to any one connection
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no Socket Mode client connected within {timeout}s")
                self._cond.wait(remaining)

    def send_envelope(
        self,
        kind: str,
        payload: dict,
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,
    ) -> str:
        """Send ``payload`` in an envelope of type ``kind``; return its envelope_id."""
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        conn = self._pick(timeout)
        conn.send_json(envelope)
        with self._lock:
            self._sent.append(envelope)
        return envelope_id

    def send_events_api(self, payload: dict, *, retry_attempt: int = 0, retry_reason: str = "",
                        timeout: float = 5.0) -> str:
        """An Events API envelope (``payload`` is the ``event_callback`` body)."""
        return self.send_envelope("events_api", payload, retry_attempt=retry_attempt,
                                  retry_reason=retry_reason, timeout=timeout)

    def send_interactive(self, payload: dict, *, timeout: float = 5.0) -> str:
        """An interactivity envelope (block_actions, shortcut, view_submission…)."""
        return self.send_envelope("interactive", payload, accepts_response_payload=True, timeout=timeout)

    def send_slash_command(self, payload: dict, *, timeout: float = 5.0) -> str:
        return self.send_envelope("slash_commands", payload, accepts_response_payload=True, timeout=timeout)

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> dict:
        """The ack message the client sent for ``envelope_id`` (with any ``payload``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while envelope_id not in self._acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no ack for envelope {envelope_id} within {timeout}s "
                        f"({len(self._acks)} other ack(s), live connections={len(self._conns)})"
                    )
                self._cond.wait(remaining)
            return dict(self._acks[envelope_id])

    def disconnect(self, reason: str = "refresh_requested") -> int:
        """Send ``{"type":"disconnect","reason":...}`` to every live connection, then
        close them. Returns how many were closed. Clients should reconnect."""
        with self._lock:
            conns = [c for c in self._conns if c.alive]
        for c in conns:
            try:
                c.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "sandbox-link"}})
            except OSError:
                pass
            c.close(1000, reason)
        return len(conns)
