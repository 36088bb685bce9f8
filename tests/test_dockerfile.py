"""The Dockerfile's promises, read from the text (no Docker engine runs here), and its
HEALTHCHECK command run for real against a running relay."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
TEXT = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(l for l in TEXT.splitlines() if not l.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def only(name: str) -> str:
    found = [args for word, args in instructions() if word == name]
    assert found, f"no {name} in the Dockerfile"
    return found[-1]


def test_small_python_base():
    assert only("FROM") == "python:3.11-slim"


def test_runs_as_a_user_that_is_not_root():
    user = only("USER").split(":")[0]
    assert user not in ("root", "0", "")
    assert "useradd --system --uid 10001 --gid ssrelay" in TEXT
    # the USER line comes after everything that needs root
    words = [w for w, _ in instructions()]
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")


def test_database_lives_on_a_volume():
    assert json.loads(only("VOLUME")) == ["/data"]
    assert "SSRELAY_STORAGE_PATH=/data/ssrelay.db" in only("ENV") or "SSRELAY_STORAGE_PATH=/data/ssrelay.db" in TEXT
    assert "chown ssrelay:ssrelay /data" in TEXT


def test_entrypoint_is_ssrelay_run():
    assert json.loads(only("ENTRYPOINT")) == ["ssrelay"]
    assert json.loads(only("CMD")) == ["run"]


def test_healthcheck_probes_healthz_without_curl():
    hc = only("HEALTHCHECK")
    assert "/healthz" in hc and "curl" not in TEXT and "wget" not in TEXT
    assert hc.split("CMD", 1)[1].strip().startswith('["python", "-c",')


def test_config_comes_from_the_environment_not_a_file():
    assert "COPY ssrelay.toml" not in TEXT and "SSRELAY_CONFIG" not in TEXT
    assert "SSRELAY_HTTP_HOST=0.0.0.0" in TEXT and "EXPOSE 3000" in TEXT


def test_healthcheck_command_passes_against_a_running_relay_and_fails_without_one(make_relay):
    argv = json.loads(only("HEALTHCHECK").split("CMD", 1)[1].strip())
    assert argv[:2] == ["python", "-c"]
    relay = make_relay(POLL_INTERVAL_SECONDS="3600").start()
    ok = subprocess.run([sys.executable, "-c", argv[2]], env={"SSRELAY_HTTP_PORT": str(relay.port)},
                        capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    relay.stop()
    down = subprocess.run([sys.executable, "-c", argv[2]], env={"SSRELAY_HTTP_PORT": str(relay.port)},
                          capture_output=True, timeout=30)
    assert down.returncode != 0
