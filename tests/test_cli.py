"""The command line as operators use it: real subprocesses, real stand-ins."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def ssrelay(*args, env=None, cwd=None, timeout=120):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SSRELAY_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "relay", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


def test_demo_tells_the_whole_story_and_exits_zero(tmp_path):
    from relay.sandbox import scenario
    run = ssrelay("demo", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    assert out.count("[Approve]  [Deny]") == 4
    assert "Your request for prod-db was approved by Bob Approver" in out
    assert "Canceled by Rita Requester" in out
    assert "Demo complete" in out
    assert "SANDBOX-FIELD-VALUE" not in out + run.stderr
    assert scenario.RELAY_PASSWORD not in out + run.stderr


def test_migrate_works_from_any_folder_and_is_idempotent(tmp_path):
    env = {"SSRELAY_STORAGE_PATH": str(tmp_path / "x.db")}
    first = ssrelay("migrate", env=env, cwd=tmp_path)
    assert first.returncode == 0 and "applied 0001_initial.sql" in first.stdout
    again = ssrelay("migrate", env=env, cwd="/")
    assert again.returncode == 0 and "database is up to date" in again.stdout


def test_status_reads_without_writing(tmp_path):
    env = {"SSRELAY_STORAGE_PATH": str(tmp_path / "x.db")}
    ssrelay("migrate", env=env, cwd=tmp_path)
    db = tmp_path / "x.db"
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    run = ssrelay("status", env=env, cwd=tmp_path)
    assert run.returncode == 0
    assert "pending requests:     0" in run.stdout and "last successful poll: never" in run.stdout
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before


def test_bad_config_names_the_key(tmp_path):
    (tmp_path / "ssrelay.toml").write_text('[slack]\nmode = "htp"\n')
    env = {"SSRELAY_CONFIG": str(tmp_path / "ssrelay.toml"), "SSRELAY_SECRET_SERVER_BASE_URL": "https://ss.example",
           "SSRELAY_SECRET_SERVER_USERNAME": "svc", "SSRELAY_SECRET_SERVER_PASSWORD": "pw",
           "SSRELAY_SLACK_BOT_TOKEN": "xoxb-1"}
    run = ssrelay("run", cwd=tmp_path, env=env)
    assert run.returncode == 2
    assert "slack.mode" in run.stderr and "expected one of" in run.stderr


def test_keygen_prints_a_fernet_key():
    from cryptography.fernet import Fernet
    key = ssrelay("keygen").stdout.strip()
    Fernet(key.encode())


def test_check_against_healthy_stand_ins_passes(sandbox, tmp_path):
    env = sandbox.environ(str(tmp_path / "c.db"))
    ssrelay("migrate", env=env, cwd=tmp_path)
    run = ssrelay("check", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stdout
    lines = run.stdout.strip().splitlines()
    assert all(line.startswith("ok ") for line in lines), run.stdout
    assert any("sees 0 pending request(s)" in line for line in lines)


@pytest.mark.parametrize("breakage, expected", [
    ({"SSRELAY_SECRET_SERVER_PASSWORD": "wrong"}, "FAIL relay account login: Secret Server refused the credentials"),
    ({"SSRELAY_SLACK_BOT_TOKEN": "xoxb-wrong"}, "FAIL slack bot token: Slack said invalid_auth"),
    ({"SSRELAY_SECRET_SERVER_BASE_URL": "http://127.0.0.1:9/SecretServer"}, "FAIL secret server reachable"),
])
def test_check_names_each_broken_part(sandbox, tmp_path, breakage, expected):
    env = {**sandbox.environ(str(tmp_path / "c.db")), "SSRELAY_SECRET_SERVER_TIMEOUT_SECONDS": "1", **breakage}
    ssrelay("migrate", env=env, cwd=tmp_path)
    run = ssrelay("check", env=env, cwd=tmp_path)
    assert run.returncode == 1
    assert expected in run.stdout, run.stdout
    assert "->" in next(line for line in run.stdout.splitlines() if line.startswith("FAIL"))


def test_every_command_is_documented_in_the_readme():
    from relay.cli import build_parser
    readme = (ROOT / "README.md").read_text()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        assert f"### `ssrelay {name}`" in readme, f"ssrelay {name} is not documented"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    block = re.search(r"\*\*Run the tests\*\*.*?```bash\n(.+?)\n```", readme, re.S).group(1)
    test_command = block.split("&& ", 3)[-1]        # after creating and activating the venv
    assert test_command in ci


def test_backup_copies_a_live_database_that_opens_with_its_rows(tmp_path):
    from relay.store import db as store
    live = store.open_db(str(tmp_path / "live.db"))
    store.migrate(live)
    with live.atomic():
        live.execute("INSERT INTO relay_state (key, value) VALUES ('last_successful_poll', '2024-05-01T10:00:00+00:00')")
        live.execute("INSERT INTO slack_links (slack_user, ss_user_id, ss_username, linked_at) "
                     "VALUES ('UBOB', 7, 'bob', '2024-05-01T10:00:00+00:00')")
    # the relay keeps its connection open (WAL) while the operator backs up
    env = {"SSRELAY_STORAGE_PATH": str(tmp_path / "live.db")}
    run = ssrelay("backup", str(tmp_path / "snap" / "copy.db"), env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"backed up {tmp_path / 'live.db'} to {tmp_path / 'snap' / 'copy.db'}")
    copy = store.open_db(str(tmp_path / "snap" / "copy.db"))
    assert store.pending(copy) == []
    assert copy.execute("SELECT ss_username FROM slack_links").fetchall() == [("bob",)]
    assert copy.execute("SELECT value FROM relay_state WHERE key = 'last_successful_poll'").fetchone() \
        == ("2024-05-01T10:00:00+00:00",)
    again = ssrelay("backup", str(tmp_path / "snap" / "copy.db"), env=env, cwd=tmp_path)
    assert again.returncode == 1 and "exists" in again.stderr


def test_readme_config_table_matches_the_code_and_the_example_file():
    """Every key in the README's configuration table, with its variable and default, is the
    code's (`config.SCHEMA`), and each is in config.example.toml."""
    from relay.config import SCHEMA, SECRET_KEYS
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Configuration reference"):readme.index("### Time zones")]
    rows = re.findall(r"^\| `([a-z_]+)\.([a-z_]+)` \| `(SSRELAY_[A-Z_]+)`[^|]*\| ([^|]+) \|", section, re.M)
    assert {(s, k) for s, k, _, _ in rows} == set(SCHEMA), "README table and config.SCHEMA differ"
    example = (ROOT / "config.example.toml").read_text()
    for s, k, env, default in rows:
        assert env == f"SSRELAY_{s}_{k}".upper()
        want, _ = SCHEMA[(s, k)]
        if want is None:
            assert default.strip() == "required", (s, k, default)
        elif (s, k) not in SECRET_KEYS:
            shown = ("true" if want else "false") if isinstance(want, bool) else \
                "{}" if isinstance(want, dict) else f'"{want}"' if isinstance(want, str) else str(want)
            assert default.strip() == f"`{shown}`", (s, k, default)
        assert re.search(rf"^#?\s*{k}\b", example, re.M), f"{s}.{k} is not in config.example.toml"


def test_config_option_works_after_the_command_too(tmp_path):
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('[storage]\npath = "%s"\n' % (tmp_path / "y.db"))
    run = ssrelay("migrate", "--config", str(cfg), cwd="/")
    assert run.returncode == 0 and str(tmp_path / "y.db") in run.stdout
    run = ssrelay("--config", str(cfg), "status", cwd="/")
    assert run.returncode == 0


def test_demo_runs_behind_a_delinea_platform_tenant(tmp_path):
    run = ssrelay("demo", "--flavour", "platform", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Delinea Platform stand-in: http://127.0.0.1:" in run.stdout
    assert run.stdout.count("[Approve]  [Deny]") == 4 and "Demo complete" in run.stdout


def test_run_starts_itself_again_before_it_says_anything(tmp_path):
    # `ssrelay run` on glibc starts itself again (relay.memory); what it logs at start, here a
    # mistyped variable's warning before a config error, is said once, by the process that stays.
    env = {"SSRELAY_ZZZZZZZZ": "1", "SSRELAY_CONFIG": str(tmp_path / "missing.toml")}
    env.update({k: v for k, v in os.environ.items() if not k.startswith("SSRELAY_") and k != "GLIBC_TUNABLES"})
    run = ssrelay("run", env=env, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("SSRELAY_ZZZZZZZZ: unknown setting") == 1, run.stderr
