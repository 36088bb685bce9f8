"""The README's sample outputs, proxy example and env file are the real thing: each sample is
regenerated here from the command it shows and compared, so a new migration, check or route
cannot leave the documentation behind."""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from relay import checks, config, listen
from relay.store import db as store

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def section(heading: str) -> str:
    start = README.index(heading + "\n")
    following = re.search(r"^#{2,3} ", README[start + len(heading):], re.M)
    return README[start:start + len(heading) + following.start()] if following else README[start:]


def output_block(heading: str) -> list[str]:
    block = re.search(r"```output\n(.*?)\n```", section(heading), re.S)
    assert block, f"no output block under {heading}"
    return block.group(1).splitlines()


def ssrelay(*args, env=None, cwd=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SSRELAY_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "relay", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=120)


def test_migrate_sample_is_the_real_output_and_lists_every_migration(tmp_path):
    shipped = sorted(p.name for p in (ROOT / "migrations").glob("[0-9][0-9][0-9][0-9]_*.sql"))
    real = ssrelay("migrate", cwd=tmp_path).stdout.strip()
    assert real == f"applied {', '.join(shipped)} (ssrelay.db)"
    assert output_block("### `ssrelay migrate`") == [real]
    assert ssrelay("migrate", cwd=tmp_path).stdout.strip() == "database is up to date (ssrelay.db)"
    assert "`database is up to date`" in section("### `ssrelay migrate`")


def test_status_samples_are_the_real_output(tmp_path):
    missing = ssrelay("status", cwd=tmp_path).stderr.strip()
    assert f"`{missing}`" in " ".join(section("### `ssrelay status`").split())
    ssrelay("migrate", cwd=tmp_path)
    assert output_block("### `ssrelay status`") == ssrelay("status", cwd=tmp_path).stdout.strip().splitlines()


def test_busy_port_sample_is_the_real_sentence():
    sentence = listen._why("0.0.0.0", 3000, OSError(errno.EADDRINUSE, "Address already in use"))
    assert output_block("### `ssrelay run`") == [f"ssrelay: {sentence}"]


def test_check_sample_is_what_check_prints(sandbox, tmp_path, monkeypatch):
    """The sample: a token without im:write, no encryption key, Secret Server writing its
    timestamps at UTC+01:00. Lines that depend on the network (TLS, host names, counts,
    workspace) are compared by verdict and name; the others word for word."""
    from zoneinfo import ZoneInfo
    monkeypatch.chdir(tmp_path)
    from relay.manifest import BOT_SCOPES
    sandbox.slack.scopes = tuple(scope for scope in BOT_SCOPES if scope != "im:write")
    sandbox.ss.world.tz = ZoneInfo("Etc/GMT-1")          # POSIX sign: UTC+01:00, no DST
    store.migrate(store.open_db("ssrelay.db"))
    Path("ssrelay.toml").write_text('[http]\npublic_url = "https://relay.example.com"\n')
    cfg = config.load(environ=sandbox.environ("ssrelay.db", STORAGE_ENCRYPTION_KEY=""))
    real = [c.line() for c in checks.run_checks(cfg)]
    sample = output_block("### `ssrelay check`")
    assert [line.split(":")[0] for line in sample] == [line.split(":")[0] for line in real]
    exact = ("ok   config:", "ok   public URL:", "ok   relay account login:", "WARN secret server time zone:",
             "FAIL slack scopes:", "FAIL encryption key:", "ok   database:")
    for shown, printed in zip(sample, real, strict=True):
        if shown.startswith(exact):
            assert shown == printed


def test_version_is_one_number_everywhere():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(VERSION)}\b", changelog, re.M), f"CHANGELOG.md has no {VERSION} entry"
    assert f"`ssrelay {VERSION}`" in README
    assert f'org.opencontainers.image.version="{VERSION}"' in (ROOT / "Dockerfile").read_text()


# ---------------------------------------------------------------------- reverse proxy
def published_patterns() -> list[str]:
    caddy = re.search(r"```caddy\n(.*?)\n```", section("## Reverse proxy"), re.S).group(1)
    return re.search(r"@published path (.+)", caddy).group(1).split()


def test_proxy_example_publishes_exactly_the_slack_and_signin_paths(make_relay):
    patterns = published_patterns()
    assert patterns == ["/slack/events", "/api/v1/slack/*", "/signin"]
    relay = make_relay(NUDGE_TOKEN="nudge-token-for-the-route-list")    # every optional route mounted
    paths = {path for _, path in relay.web.routes}
    published = {p for p in paths if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)}
    assert published == {p for p in paths if p.startswith(("/slack/", "/api/v1/slack/", "/signin"))}
    table = section("## Reverse proxy")
    for path in sorted(paths - published):     # every other route is named as internal
        assert re.search(rf"^\|[^|]*`{re.escape(path)}`[^|]*\|[^|]*\| no \|$", table, re.M), \
            f"{path} is served but the README's reverse-proxy table does not say to keep it internal"


# ---------------------------------------------------------------------- env file
def env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / "ssrelay.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and name == name.strip() and '"' not in value, f"not docker --env-file syntax: {line}"
            pairs[name] = value
    return pairs


def test_env_example_names_only_real_settings_and_every_required_one():
    pairs = env_example()
    assert not set(pairs) - config.known_variables()
    required = {config.env_name(s, k) for (s, k), (default, _) in config.SCHEMA.items() if default is None}
    assert required | {"SSRELAY_SLACK_SIGNING_SECRET", "SSRELAY_STORAGE_ENCRYPTION_KEY"} <= set(pairs)
    cfg = config.load(environ=pairs, use_file=False)       # loads as written (placeholders)
    assert cfg.warnings == () and cfg.http.public_url.startswith("https://")


def test_readme_points_env_file_users_at_the_example():
    container = section("## Running in a container")
    assert "--env-file ssrelay.env" in container and "cp ssrelay.env.example ssrelay.env" in container
