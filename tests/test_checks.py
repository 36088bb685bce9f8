"""`ssrelay check` against healthy stand-ins and against each broken one: every failing line
names the problem and says what to do (`->`)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from relay import checks
from relay.sandbox.socket_mode import SocketModeStandIn
from relay.store import db as store


def migrated(path: str) -> str:
    store.migrate(store.open_db(path))
    return path


def lines(results) -> str:
    return "\n".join(c.line() for c in results)


def failing(results, name: str) -> checks.Check:
    found = [c for c in results if c.name == name]
    assert found, f"no {name!r} line in:\n{lines(results)}"
    assert not found[0].ok, lines(results)
    assert "->" in found[0].line(), "a failing line says what to do"
    return found[0]


@pytest.fixture
def socket_mode(sandbox):
    sm = SocketModeStandIn().start()
    sandbox.slack.attach_socket_mode(sm)
    yield sm
    sm.stop()


def test_healthy_http_mode_passes_every_check(sandbox, tmp_path):
    cfg = sandbox.config(migrated(str(tmp_path / "c.db")))
    results = checks.run_checks(cfg)
    assert all(c.ok for c in results), lines(results)
    names = [c.name for c in results]
    assert names == ["config", "public URL", "secret server TLS", "secret server reachable", "relay account login",
                     "relay account can list access requests", "secret server time zone",
                     "slack bot token", "slack scopes",
                     "encryption key", "database"]
    assert "has chat:write, commands, im:history, im:write, users:read, users:read.email" in lines(results)
    assert "ok   secret server time zone: timestamps read as UTC agree" in lines(results)


def test_a_server_writing_local_time_is_warned_about_until_the_zone_is_set(sandbox, tmp_path):
    # Secret Server answers in India Standard Time (UTC+05:30, no DST), the relay reads UTC
    from zoneinfo import ZoneInfo
    sandbox.ss.world.tz = ZoneInfo("Asia/Kolkata")
    path = migrated(str(tmp_path / "c.db"))
    results = checks.run_checks(sandbox.config(path))
    [zone] = [c for c in results if c.name == "secret server time zone"]
    assert zone.ok and zone.warn, lines(results)           # a warning, not a failure
    assert zone.line() == (
        "WARN secret server time zone: timestamps read as UTC are 5 h 30 min off Secret Server's clock: "
        "it seems to write them in another zone -> set secret_server.timezone to the IANA zone of the "
        "Secret Server host (its timestamps look like UTC+05:30), e.g. \"Europe/Berlin\"")
    # with the zone configured, the line passes quietly
    results = checks.run_checks(sandbox.config(path, secret_server_timezone="Asia/Kolkata"))
    assert "ok   secret server time zone: timestamps read as Asia/Kolkata agree" in lines(results)


@pytest.mark.parametrize("gap_minutes, offset_minutes", [
    (0, None), (3, None), (-9, None), (20, None), (25, None), (60, 60), (-62, -60), (330, 330),
    (-301, -300), (45, 45), (7 * 24 * 60, None),
])
def test_zone_offset_seen_only_for_whole_quarter_hours(gap_minutes, offset_minutes):
    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)
    seen = checks.zone_offset_seen(now - dt.timedelta(minutes=gap_minutes), now)
    assert seen == (None if offset_minutes is None else dt.timedelta(minutes=offset_minutes))


def test_healthy_socket_mode_opens_a_connection(sandbox, socket_mode, tmp_path):
    cfg = sandbox.config(migrated(str(tmp_path / "c.db")), SLACK_MODE="socket")
    results = checks.run_checks(cfg)
    assert all(c.ok for c in results), lines(results)
    assert "ok   slack socket mode: connected, Slack said hello" in lines(results)
    assert socket_mode.total_connections >= 1


def test_wrong_app_token_fails_the_socket_mode_line(sandbox, socket_mode, tmp_path):
    cfg = sandbox.config(migrated(str(tmp_path / "c.db")), SLACK_MODE="socket", SLACK_APP_TOKEN="xapp-1-wrong")
    c = failing(checks.run_checks(cfg), "slack socket mode")
    assert "Slack said invalid_auth" in c.detail and "SSRELAY_SLACK_APP_TOKEN" in c.fix


def test_socket_mode_off_in_slack_fails_the_socket_mode_line(sandbox, tmp_path):
    # no Socket Mode stand-in attached: apps.connections.open refuses
    cfg = sandbox.config(migrated(str(tmp_path / "c.db")), SLACK_MODE="socket")
    c = failing(checks.run_checks(cfg), "slack socket mode")
    assert c.detail.startswith("Slack said")


def test_missing_scopes_are_named(sandbox, tmp_path):
    sandbox.slack.scopes = ("chat:write", "users:read", "channels:history")
    cfg = sandbox.config(migrated(str(tmp_path / "c.db")))
    c = failing(checks.run_checks(cfg), "slack scopes")
    assert c.detail == "the bot token lacks commands, im:history, im:write, users:read.email"
    assert "ssrelay manifest" in c.fix


def test_extra_scopes_pass_but_are_mentioned():
    c = checks.scopes_check({"chat:write", "im:write", "im:history", "users:read", "users:read.email", "commands",
                             "channels:read"})
    assert c.ok and "more than needed: channels:read" in c.detail


def test_missing_encryption_key_is_named(sandbox, tmp_path):
    cfg = sandbox.config(migrated(str(tmp_path / "c.db")), STORAGE_ENCRYPTION_KEY="")
    c = failing(checks.run_checks(cfg), "encryption key")
    assert c.detail == "storage.encryption_key is not set" and "ssrelay keygen" in c.fix


def test_missing_database_is_named_and_not_created(sandbox, tmp_path):
    path = tmp_path / "never.db"
    c = failing(checks.run_checks(sandbox.config(str(path))), "database")
    assert c.detail == f"no database at {path}" and "ssrelay migrate" in c.fix
    assert not path.exists()


def test_unmigrated_database_is_named(sandbox, tmp_path):
    path = str(tmp_path / "old.db")
    store.open_db(path).execute("CREATE TABLE x (y)")
    c = failing(checks.run_checks(sandbox.config(path)), "database")
    assert "is not migrated: pending 0001_initial.sql" in c.detail


def test_relay_account_that_cannot_list_requests_is_named(sandbox, tmp_path):
    sandbox.ss.fail(r"/api/v1/secret-access-requests$", status=403, times=50)
    c = failing(checks.run_checks(sandbox.config(migrated(str(tmp_path / "c.db")))),
                "relay account can list access requests")
    assert "approver groups" in c.fix


def test_slack_unreachable_is_named(sandbox, tmp_path):
    cfg = sandbox.config(migrated(str(tmp_path / "c.db")), SLACK_API_URL="http://127.0.0.1:9/api/")
    c = failing(checks.run_checks(cfg), "slack bot token")
    assert "not reachable" in c.detail


# ---------------------------------------------------------------------- TLS
def _self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ss.sandbox")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "ss.pem", tmp_path / "ss.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def https_ss(tmp_path):
    """A Secret Server health check behind a self-signed certificate."""
    cert, key = _self_signed(tmp_path)

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"healthy": True}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/SecretServer", cert
    server.shutdown()
    server.server_close()


def test_untrusted_certificate_gets_a_clear_line(sandbox, tmp_path, https_ss):
    url, _ = https_ss
    cfg = sandbox.config(migrated(str(tmp_path / "c.db")), SECRET_SERVER_BASE_URL=url)
    results = checks.run_checks(cfg)
    c = failing(results, "secret server TLS")
    assert c.detail.startswith("certificate verification failed for 127.0.0.1:")
    assert "CERTIFICATE_VERIFY_FAILED" in c.detail or "certificate verify failed" in c.detail
    assert "secret_server.verify_tls" in c.fix
    assert "skip secret server reachable: skipped (TLS connection not trusted)" in lines(results)
    assert "skip relay account login: skipped (SS unreachable)" in lines(results)


def test_certificate_signed_by_the_configured_ca_bundle_passes(sandbox, tmp_path, https_ss):
    url, cert = https_ss
    cfg = sandbox.config(str(tmp_path / "c.db"), SECRET_SERVER_BASE_URL=url, SECRET_SERVER_VERIFY_TLS=cert)
    c = checks.tls_check(cfg)
    assert c.ok and c.detail == f"certificate valid (verified with the CA bundle {cert})"


def test_plain_http_and_verification_off_are_said_plainly(sandbox, tmp_path, https_ss):
    assert "plain HTTP" in checks.tls_check(sandbox.config(str(tmp_path / "c.db"))).detail
    url, _ = https_ss
    off = checks.tls_check(sandbox.config(str(tmp_path / "c.db"), SECRET_SERVER_BASE_URL=url,
                                          SECRET_SERVER_VERIFY_TLS="false"))
    assert off.ok and "NOT verified" in off.detail
