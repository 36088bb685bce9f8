"""An operator's first hour: what `run`, `status`, `backup`, `check`, `--version` and `--help`
say and do when something is off. Real subprocesses and stand-ins, except where a check is
read in-process for its exact lines."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from relay import checks, config
from relay.errors import ConfigError, ConfigProblems
from relay.store import db as store

ROOT = Path(__file__).parent.parent
MINIMAL = {
    "SSRELAY_SECRET_SERVER_BASE_URL": "https://ss.example.com/SecretServer",
    "SSRELAY_SECRET_SERVER_USERNAME": "svc",
    "SSRELAY_SECRET_SERVER_PASSWORD": "pw-very-secret",
    "SSRELAY_SLACK_BOT_TOKEN": "xoxb-123-secret",
    "SSRELAY_SLACK_SIGNING_SECRET": "sign-secret-1",
}


def ssrelay(*args, env=None, cwd=None, timeout=120):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SSRELAY_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "relay", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


def closed_port() -> int:
    """A loopback port nothing listens on (bound once by us, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lines(results) -> list[str]:
    return [c.line() for c in results]


def line_of(results, name: str) -> str:
    found = [c.line() for c in results if c.name == name]
    assert found, f"no {name!r} line in:\n" + "\n".join(lines(results))
    return found[0]


# ---------------------------------------------------------------------- run: the port first
def run_while_a_port_is_taken(sandbox, tmp_path, **settings):
    """`ssrelay run` while something else listens on a port; `settings` name it as PORT.
    Returns (the run, the port, the database path)."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    db = tmp_path / "second.db"
    env = sandbox.environ(str(db), **{k: (str(port) if v == "PORT" else v) for k, v in settings.items()})
    try:
        return ssrelay("run", env=env, cwd=tmp_path, timeout=60), port, db
    finally:
        busy.close()


def test_run_on_a_busy_port_stops_with_one_line_before_touching_anything(sandbox, tmp_path):
    # Setup and action: a second relay starts on a port something already listens on.
    run, port, db = run_while_a_port_is_taken(sandbox, tmp_path, HTTP_PORT="PORT")
    # It stopped with one line naming the key, the host and the port, and no traceback.
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"ssrelay: http.port: 127.0.0.1:{port} is already in use (another ssrelay, or another program, "
        "listens there); stop it or set http.port (SSRELAY_HTTP_PORT) to a free port"]
    # Nothing was migrated, polled, sent or written.
    assert not db.exists() and list(tmp_path.iterdir()) == []
    assert sandbox.ss.calls == []
    assert sandbox.slack.calls == []


def test_run_on_a_busy_admin_port_stops_with_one_line_naming_it(sandbox, tmp_path):
    run, port, db = run_while_a_port_is_taken(sandbox, tmp_path, HTTP_PORT="0", HTTP_ADMIN_HOST="127.0.0.1",
                                              HTTP_ADMIN_PORT="PORT")
    # It stopped before anything, with one line naming http.admin_port.
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"ssrelay: http.admin_port: 127.0.0.1:{port} is already in use (another ssrelay, or another "
        "program, listens there); stop it or set http.admin_port (SSRELAY_HTTP_ADMIN_PORT) to a free port"]
    assert not db.exists() and sandbox.ss.calls == [] and sandbox.slack.calls == []


def test_run_serves_on_the_socket_it_bound_first(sandbox, tmp_path):
    from relay import listen
    from relay.runtime import Relay
    sock = listen.bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    relay = Relay(sandbox.config(str(tmp_path / "r.db"), POLL_INTERVAL_SECONDS="3600")).start(listening=sock)
    try:
        import requests
        assert relay.port == port
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json() == {"status": "ok"}
    finally:
        relay.stop()


# ---------------------------------------------------------------------- status and backup
def test_status_without_a_database_says_so_and_creates_nothing(tmp_path):
    run = ssrelay("status", env={"SSRELAY_STORAGE_PATH": str(tmp_path / "x.db")}, cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.strip() == f"ssrelay: no database at {tmp_path / 'x.db'} (run `ssrelay migrate`)"
    assert list(tmp_path.iterdir()) == []
    default = ssrelay("status", cwd=tmp_path)       # ./ssrelay.db, the default path
    assert default.returncode == 1 and "no database at ssrelay.db" in default.stderr
    assert list(tmp_path.iterdir()) == []


def test_backup_refuses_an_empty_or_unmigrated_database(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    run = ssrelay("backup", str(tmp_path / "copy.db"), env={"SSRELAY_STORAGE_PATH": str(empty)}, cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.strip() == (f"ssrelay: refusing to back up: database {empty} is empty, or not an ssrelay "
                                  "database (run `ssrelay migrate`)")
    assert not (tmp_path / "copy.db").exists() and empty.read_bytes() == b""

    old = tmp_path / "old.db"
    conn = store.open_db(old)
    store.migrate(conn)
    conn.execute("DELETE FROM schema_migrations WHERE name = '0002_interactions.sql'")
    conn.conn.close()
    run = ssrelay("backup", str(tmp_path / "copy.db"), env={"SSRELAY_STORAGE_PATH": str(old)}, cwd=tmp_path)
    assert run.returncode == 1 and "is not migrated: pending 0002_interactions.sql" in run.stderr
    assert not (tmp_path / "copy.db").exists()

    missing = ssrelay("backup", str(tmp_path / "copy.db"), env={"SSRELAY_STORAGE_PATH": str(tmp_path / "no.db")},
                      cwd=tmp_path)
    assert missing.returncode == 1 and "no database at" in missing.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "old.db"]


# ---------------------------------------------------------------------- config wording
def test_a_mistyped_environment_variable_is_named_with_the_right_one():
    cfg = config.load(environ={**MINIMAL, "SSRELAY_POLL_INTERVAL_SECOND": "30", "SSRELAY_CONFIG": "x.toml",
                               "SSRELAY_SLACK_BOT_TOKEN_FILE": "", "SSRELAY_ZZZ": "1"}, use_file=False)
    assert cfg.poll.interval_seconds == 15       # the typo changed nothing...
    assert cfg.warnings == (                     # ...and is said, with the closest name
        "SSRELAY_POLL_INTERVAL_SECOND: unknown setting; did you mean SSRELAY_POLL_INTERVAL_SECONDS? (ignored)",
        "SSRELAY_ZZZ: unknown setting (config.example.toml lists every one) (ignored)")


def test_status_warns_about_a_mistyped_variable(tmp_path):
    env = {"SSRELAY_STORAGE_PAHT": str(tmp_path / "x.db")}
    run = ssrelay("status", env=env, cwd=tmp_path)
    assert ("ssrelay: warning: config: SSRELAY_STORAGE_PAHT: unknown setting; did you mean "
            "SSRELAY_STORAGE_PATH? (ignored)") in run.stderr.splitlines()


def test_unknown_file_keys_get_the_same_wording_all_at_once(tmp_path):
    f = tmp_path / "ssrelay.toml"
    f.write_text('[poll]\nintervall = 3\n[slak]\nmode = "http"\n')
    with pytest.raises(ConfigProblems) as e:
        config.load(str(f), MINIMAL)
    assert [str(p) for p in e.value.problems] == [
        "config: poll.intervall: unknown setting; did you mean poll.interval_seconds?",
        "config: [slak]: unknown setting; did you mean slack?"]


def test_every_missing_required_key_is_named_in_one_run(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.load(environ={}, use_file=False)
    assert [p.key for p in e.value.problems] == [
        "secret_server.base_url", "secret_server.username", "secret_server.password", "slack.bot_token",
        "slack.signing_secret"]
    run = ssrelay("check", cwd=tmp_path)
    assert run.returncode == 1
    fails = run.stdout.strip().splitlines()
    assert fails[0] == ("FAIL config: secret_server.base_url: is required (or SSRELAY_SECRET_SERVER_BASE_URL) "
                        "-> fix that key in the config file or its SSRELAY_* variable")
    assert [line.split(":")[1].strip() for line in fails] == [p.key for p in e.value.problems]
    assert "config: config:" not in run.stdout + run.stderr
    assert list(tmp_path.iterdir()) == []


def test_run_prints_each_bad_key_on_its_own_line(tmp_path):
    run = ssrelay("run", env={"SSRELAY_SLACK_MODE": "htp"}, cwd=tmp_path)
    assert run.returncode == 2
    errors = run.stderr.strip().splitlines()
    assert "ssrelay: config: slack.mode: expected one of \"http\", \"socket\" (got 'htp')" in errors
    assert "ssrelay: config: slack.bot_token: is required (or SSRELAY_SLACK_BOT_TOKEN)" in errors
    assert all(line.startswith("ssrelay: config: ") for line in errors) and "Traceback" not in run.stderr


def test_sections_are_frozen_typed_dataclasses_matching_the_schema():
    cfg = config.load(environ=MINIMAL, use_file=False)
    for name, cls in config.SECTIONS.items():
        assert dataclasses.is_dataclass(cls) and isinstance(getattr(cfg, name), cls)
        assert set(config.section_keys(name)) == {k for s, k in config.SCHEMA if s == name}, name
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.poll.interval_seconds = 1          # type: ignore[misc]
    assert isinstance(cfg.http.port, int) and isinstance(cfg.poll.interval_seconds, float)
    assert cfg.slack.bot_token.value == "xoxb-123-secret" and "xoxb-123-secret" not in repr(cfg)


# ---------------------------------------------------------------------- check
def test_check_says_from_environment_when_there_is_no_file(sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = config.load(environ=sandbox.environ(str(tmp_path / "c.db")))
    assert cfg.source == ""
    assert checks.config_loaded(cfg)[0].line() == "ok   config: from environment (no config file)"
    (tmp_path / "ssrelay.toml").write_text("[poll]\ninterval_seconds = 5\n")
    cfg = config.load(environ=sandbox.environ(str(tmp_path / "c.db")))
    assert checks.config_loaded(cfg)[0].line() == "ok   config: loaded from ssrelay.toml"


def test_check_shows_a_mistyped_variable_as_a_warning_line(sandbox, tmp_path):
    cfg = config.load(environ=sandbox.environ(str(tmp_path / "c.db"), SSRELAY_SLACK_MOD="socket"), use_file=False)
    assert checks.config_loaded(cfg)[1].line() == (
        "WARN config: SSRELAY_SLACK_MOD: unknown setting; did you mean SSRELAY_SLACK_MODE? (ignored)")


def test_slack_unreachable_gets_network_advice_not_token_advice(sandbox, tmp_path):
    store.migrate(store.open_db(str(tmp_path / "c.db")))
    cfg = sandbox.config(str(tmp_path / "c.db"), SLACK_API_URL=f"http://127.0.0.1:{closed_port()}/api/")
    results = checks.run_checks(cfg)
    bot = line_of(results, "slack bot token")
    assert bot.startswith("FAIL slack bot token: Slack not reachable (")
    assert bot.endswith("-> " + checks.FIX_SLACK_NETWORK)
    assert "SSRELAY_SLACK_BOT_TOKEN" not in bot
    assert line_of(results, "slack scopes") == "skip slack scopes: skipped (Slack unreachable)"


def test_a_refused_slack_token_still_gets_token_advice(sandbox, tmp_path):
    cfg = sandbox.config(str(tmp_path / "c.db"), SLACK_BOT_TOKEN="xoxb-wrong")
    results = checks.slack_checks(cfg)
    assert lines(results) == [f"FAIL slack bot token: Slack said invalid_auth -> {checks.FIX_BOT_TOKEN}",
                              "skip slack scopes: skipped (the bot token was refused)"]


def test_secret_server_unreachable_skips_what_could_not_run(sandbox, tmp_path):
    cfg = sandbox.config(str(tmp_path / "c.db"), SECRET_SERVER_BASE_URL=f"https://127.0.0.1:{closed_port()}/SS",
                         SECRET_SERVER_TIMEOUT_SECONDS="1")
    results = checks.secret_server_checks(cfg)
    shown = lines(results)
    assert shown[0] == "skip secret server TLS: skipped (SS unreachable)"
    assert shown[1].startswith("FAIL secret server reachable: unreachable (") and "HTTPS_PROXY" in shown[1]
    assert shown[2:] == ["skip relay account login: skipped (SS unreachable)",
                         "skip relay account can list access requests: skipped (SS unreachable)",
                         "skip secret server time zone: skipped (SS unreachable)"]
    assert not any(line.startswith("ok") for line in shown)


def test_plain_http_public_url_is_a_warning_because_it_hosts_the_password_form(sandbox, tmp_path):
    plain = checks.public_url_check(sandbox.config(str(tmp_path / "c.db"), HTTP_PUBLIC_URL="http://relay.example.com"))
    assert plain.ok and plain.line().startswith("WARN public URL: http://relay.example.com is plain HTTP: ")
    assert "Secret Server passwords" in plain.line() and "https://" in plain.line()
    https = checks.public_url_check(sandbox.config(str(tmp_path / "c.db"), HTTP_PUBLIC_URL="https://relay.example.com"))
    assert https.line() == "ok   public URL: https://relay.example.com (HTTPS)"
    local = checks.public_url_check(sandbox.config(str(tmp_path / "c.db"), HTTP_PUBLIC_URL="http://127.0.0.1:3000"))
    assert local.line().startswith("ok   public URL: http://127.0.0.1:3000 is plain HTTP on loopback")


def test_check_output_has_no_log_lines(sandbox, tmp_path):
    # Secret Server answers 503 (the client logs each retry) and Slack is unreachable.
    sandbox.ss.fail(r".*", status=503, times=1000)
    env = {**sandbox.environ(str(tmp_path / "c.db")), "SSRELAY_SLACK_API_URL": f"http://127.0.0.1:{closed_port()}/api/"}
    run = ssrelay("check", env=env, cwd=tmp_path)
    assert run.returncode == 1
    out = (run.stdout + run.stderr).strip().splitlines()
    assert out and all(line[:4] in ("ok  ", "WARN", "skip", "FAIL") for line in out), "\n".join(out)
    for line in out:
        with pytest.raises(ValueError):
            json.loads(line)


# ---------------------------------------------------------------------- version and help
def test_version_comes_from_the_package_metadata():
    want = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    run = ssrelay("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"ssrelay {want}"


def test_every_command_has_a_one_line_description(capsys):
    from relay.cli import COMMANDS, build_parser, main
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)
    with pytest.raises(SystemExit):
        main(["--help"])
    top = " ".join(capsys.readouterr().out.split())
    for name, text in COMMANDS.items():
        assert text and "\n" not in text
        assert f"{name} {text}" in top, name
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert text in " ".join(capsys.readouterr().out.split()), name
