"""The Dockerfile's promises, read from the text (no Docker engine runs here), and its
HEALTHCHECK command run for real against a running relay."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).parent.parent
TEXT = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(ln for ln in TEXT.splitlines() if not ln.lstrip().startswith("#")))
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
    # numeric, so Kubernetes' runAsNonRoot can verify it (hadolint DL3002 family)
    assert only("USER") == "10001:10001"
    assert "useradd --system --uid 10001 --gid ssrelay" in TEXT and "groupadd --system --gid 10001" in TEXT
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


PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line}"
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_image_installs_with_the_committed_constraints():
    runs = [args for word, args in instructions() if word == "RUN"]
    assert any("pip install -c constraints.txt ." in r for r in runs)
    copied = [args for word, args in instructions() if word == "COPY"]
    assert any("constraints.txt" in c.split() for c in copied)


def test_constraints_pin_every_runtime_dependency_within_its_range():
    pins = constraints()
    for spec in PYPROJECT["project"]["dependencies"]:
        req = Requirement(spec)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {req.specifier}"
    test_only = {Requirement(s).name.lower() for s in PYPROJECT["project"]["optional-dependencies"]["test"]}
    assert not test_only & set(pins), "constraints.txt is for the image: runtime packages only"


def test_oci_labels_name_the_image_and_its_version():
    labels = dict(item.split("=", 1) for item in shlex.split(only("LABEL")))
    assert labels["org.opencontainers.image.title"] == "ssrelay"
    assert labels["org.opencontainers.image.version"] == PYPROJECT["project"]["version"]
    assert labels["org.opencontainers.image.licenses"] == PYPROJECT["project"]["license"]
    assert labels["org.opencontainers.image.description"]
