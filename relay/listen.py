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


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, resolved the way waitress resolves them (so the server
    later serves exactly this socket). Raises PortUnavailable naming http.port / http.host."""
    try:
        family, socktype, proto, address = Adjustments(host=host, port=port).listen[0]
    except ValueError as exc:     # waitress wraps getaddrinfo's failure
        raise PortUnavailable(f"http.host: cannot listen on {host!r} ({exc}); set http.host "
                              "(SSRELAY_HTTP_HOST) to an address of this machine, e.g. 0.0.0.0") from None
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
        raise PortUnavailable(_why(host, port, exc)) from None
    return sock


def _why(host: str, port: int, exc: OSError) -> str:
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (f"http.port: {where} is already in use (another ssrelay, or another program, listens "
                "there); stop it or set http.port (SSRELAY_HTTP_PORT) to a free port")
    if exc.errno == errno.EACCES:
        return (f"http.port: not allowed to listen on {where} (ports below 1024 need privileges); "
                "set http.port (SSRELAY_HTTP_PORT) to 1024 or above")
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"http.host: {host} is not an address of this machine (http.port {port}); "
                "set http.host (SSRELAY_HTTP_HOST), e.g. 0.0.0.0")
    return f"http.port: cannot listen on {where} ({exc.strerror or exc})"
