"""The HTTP port, taken before anything else happens: `ssrelay run` binds it first, so a
second relay on a busy port stops with one line before it migrates, polls or writes."""

from __future__ import annotations

import errno
import socket

from waitress.adjustments import Adjustments

from .errors import RelayError

BACKLOG = 1024   # waitress's own default


class PortUnavailable(RelayError):
    """The configured http.host / http.port cannot be listened on. `str()` is one line."""


def bind(host: str, port: int, *, keys: tuple[str, str] = ("http.host", "http.port")) -> socket.socket:
    """A listening socket on host:port, resolved the way waitress resolves them (so the server
    later serves exactly this socket). A name with several addresses (`localhost` as both ::1
    and 127.0.0.1) is listened on at its first: waitress would listen on each, and serve them
    as a different kind of server. Raises PortUnavailable naming `keys` (host, port)."""
    host_key, _ = keys
    try:
        family, socktype, proto, address = Adjustments(host=host, port=port).listen[0]
    except ValueError as exc:     # waitress wraps getaddrinfo's failure
        raise PortUnavailable(f"{host_key}: cannot listen on {host!r} ({exc}); set {host_key} "
                              f"({_env(host_key)}) to an address of this machine, e.g. 0.0.0.0") from None
    sock = socket.socket(family, socktype, proto)
    # like waitress: a restart may reuse the port while old connections sit in TIME_WAIT
    # (a port another process listens on still refuses the bind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)   # as waitress does
    try:
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise PortUnavailable(_why(host, port, exc, keys)) from None
    return sock


def _env(key: str) -> str:
    return "SSRELAY_" + key.upper().replace(".", "_")


def _why(host: str, port: int, exc: OSError, keys: tuple[str, str] = ("http.host", "http.port")) -> str:
    where = f"{host}:{port}"
    hk, pk = keys
    if exc.errno == errno.EADDRINUSE:
        return (f"{pk}: {where} is already in use (another ssrelay, or another program, listens "
                f"there); stop it or set {pk} ({_env(pk)}) to a free port")
    if exc.errno == errno.EACCES:
        return (f"{pk}: not allowed to listen on {where} (ports below 1024 need privileges); "
                f"set {pk} ({_env(pk)}) to 1024 or above")
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"{hk}: {host} is not an address of this machine ({pk} {port}); "
                f"set {hk} ({_env(hk)}), e.g. 0.0.0.0")
    return f"{pk}: cannot listen on {where} ({exc.strerror or exc})"
