"""Configuration: TOML + env + *_file, validation naming the key, secrets never shown."""

import re
from pathlib import Path

import pytest

from relay import config
from relay.errors import ConfigError

MINIMAL = {
    "SSRELAY_SECRET_SERVER_BASE_URL": "https://ss.example.com/SecretServer",
    "SSRELAY_SECRET_SERVER_USERNAME": "svc",
    "SSRELAY_SECRET_SERVER_PASSWORD": "pw-very-secret",
    "SSRELAY_SLACK_BOT_TOKEN": "xoxb-123-secret",
    "SSRELAY_SLACK_SIGNING_SECRET": "sign-secret-1",
}


def load(tmp_path, toml="", **env):
    f = tmp_path / "ssrelay.toml"
    f.write_text(toml)
    return config.load(str(f), {**MINIMAL, **env})


def test_env_only_config_loads_with_defaults(tmp_path):
    cfg = load(tmp_path)
    assert cfg.slack.mode == "http" and cfg.slack.approver_messages == "ephemeral"
    assert cfg.poll.interval_seconds == 15 and cfg.approvals.default_duration_hours == 8
    assert cfg.slack.api_url == "https://slack.com/api/"


def test_env_overrides_toml(tmp_path):
    cfg = load(tmp_path, '[poll]\ninterval_seconds = 30\n', SSRELAY_POLL_INTERVAL_SECONDS="5")
    assert cfg.poll.interval_seconds == 5


def test_request_url_defaults_to_the_secrets_page_and_refuses_unknown_fields(tmp_path):
    cfg = load(tmp_path)
    assert cfg.request_url(42, 1001) == "https://ss.example.com/SecretServer/app/#/secrets/1001/general"
    cfg = load(tmp_path, SSRELAY_SECRET_SERVER_REQUEST_URL="{base_url}/requests/{id}")
    assert cfg.request_url(42, 1001) == "https://ss.example.com/SecretServer/requests/42"
    with pytest.raises(ConfigError, match=r"secret_server\.request_url: .*\{base_url\}, \{id\} and \{secret_id\}"):
        load(tmp_path, SSRELAY_SECRET_SERVER_REQUEST_URL="{base_url}/requests/{request}")


def test_bad_value_names_the_key_and_the_expectation(tmp_path):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, '[slack]\nmode = "htp"\n')
    assert str(e.value) == 'config: slack.mode: expected one of "http", "socket" (got \'htp\')'


def test_missing_required_key_says_which_env_var(tmp_path):
    env = {k: v for k, v in MINIMAL.items() if k != "SSRELAY_SLACK_BOT_TOKEN"}
    f = tmp_path / "c.toml"
    f.write_text("")
    with pytest.raises(ConfigError, match=r"slack\.bot_token: is required \(or SSRELAY_SLACK_BOT_TOKEN\)"):
        config.load(str(f), env)


def test_unknown_key_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"^config: poll\.intervall: expected|^config: poll\.intervall"):
        load(tmp_path, '[poll]\nintervall = 3\n')


def test_secret_from_file(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("from-a-file\n")
    env = {k: v for k, v in MINIMAL.items() if k != "SSRELAY_SECRET_SERVER_PASSWORD"}
    f = tmp_path / "c.toml"
    f.write_text(f'[secret_server]\npassword_file = "{pw}"\n')
    cfg = config.load(str(f), env)
    assert cfg.secret_server.password.value == "from-a-file"


def test_secrets_never_show_in_repr_or_errors(tmp_path):
    cfg = load(tmp_path)
    shown = repr(cfg) + str(cfg.secret_server) + f"{cfg.slack.bot_token}"
    for secret in ("pw-very-secret", "xoxb-123-secret", "sign-secret-1"):
        assert secret not in shown
    with pytest.raises(ConfigError) as e:
        load(tmp_path, SSRELAY_STORAGE_ENCRYPTION_KEY="not-a-fernet-key")
    assert "not-a-fernet-key" not in str(e.value) and "storage.encryption_key" in str(e.value)


def test_socket_mode_needs_an_app_token(tmp_path):
    with pytest.raises(ConfigError, match="slack.app_token"):
        load(tmp_path, SSRELAY_SLACK_MODE="socket")


def test_example_config_documents_every_key_and_loads(tmp_path):
    example = Path(__file__).parent.parent / "config.example.toml"
    text = example.read_text()
    for section, key in config.SCHEMA:
        assert re.search(rf"^\[{section}\]", text, re.M), section
        assert re.search(rf"^#?\s*{key}(_file)?\s*[=:]", text, re.M), f"{section}.{key} is undocumented"
    cfg = config.load(str(example), MINIMAL)
    assert cfg.secret_server.base_url == "https://ss.example.com/SecretServer"  # env wins over the file
    assert cfg.slack.rate_limits["chat.update"] == 50
