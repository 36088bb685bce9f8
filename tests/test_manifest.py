"""`ssrelay manifest`: the Slack app manifest for both modes, checked against the manifest's
structure (reference/slack-platform.md §7), parsed back from the YAML text the command prints."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from relay import manifest

PUBLIC = "https://relay.example.com"
# Top-level keys and their known children (Slack's manifest schema, reference §7).
SCHEMA = {
    "_metadata": {"major_version", "minor_version"},
    "display_information": {"name", "description", "long_description", "background_color"},
    "features": {"app_home", "bot_user", "shortcuts", "slash_commands", "unfurl_domains"},
    "oauth_config": {"redirect_urls", "scopes", "token_management_enabled"},
    "settings": {"allowed_ip_address_ranges", "event_subscriptions", "interactivity", "org_deploy_enabled",
                 "socket_mode_enabled", "token_rotation_enabled"},
}


def validate(m: dict) -> None:
    """Structure every manifest must have, whatever the mode."""
    assert set(m) <= set(SCHEMA) and {"display_information", "features", "oauth_config", "settings"} <= set(m)
    for key, children in SCHEMA.items():
        assert set(m.get(key, {})) <= children, f"unknown keys under {key}: {set(m[key]) - children}"
    assert m["_metadata"]["major_version"] in (1, 2)
    info = m["display_information"]
    assert 0 < len(info["name"]) <= 35 and len(info["description"]) <= 140
    assert m["features"]["bot_user"] == {"display_name": "ssrelay", "always_online": True}
    assert len(m["features"]["bot_user"]["display_name"]) <= 80
    assert m["features"]["app_home"] == {"home_tab_enabled": True, "messages_tab_enabled": True,
                                         "messages_tab_read_only_enabled": True}
    [shortcut] = m["features"]["shortcuts"]
    assert shortcut == {"name": "Search secrets", "type": "global", "callback_id": "secretsearch",
                        "description": shortcut["description"]}
    assert len(shortcut["callback_id"]) <= 255 and len(shortcut["description"]) <= 150
    assert m["oauth_config"] == {"scopes": {"bot": ["chat:write", "im:write", "im:history", "users:read",
                                                    "users:read.email", "commands"]}}
    settings = m["settings"]
    assert settings["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["org_deploy_enabled"] is False and settings["token_rotation_enabled"] is False


def run(*args, env=None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("SSRELAY_")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "relay", "manifest", *args], capture_output=True, text=True,
                          env=full, timeout=60)


def test_http_manifest_points_events_and_interactivity_at_the_public_url():
    m = yaml.safe_load(manifest.render("http", PUBLIC + "/"))
    validate(m)
    assert m["settings"]["event_subscriptions"]["request_url"] == f"{PUBLIC}/slack/events"
    assert m["settings"]["interactivity"]["request_url"] == f"{PUBLIC}/slack/events"
    assert m["settings"]["socket_mode_enabled"] is False


def test_socket_manifest_has_no_request_urls():
    m = yaml.safe_load(manifest.render("socket", PUBLIC))
    validate(m)
    assert "request_url" not in m["settings"]["event_subscriptions"]
    assert m["settings"]["interactivity"] == {"is_enabled": True}
    assert m["settings"]["socket_mode_enabled"] is True


@pytest.mark.parametrize("mode", ["http", "socket"])
def test_the_yaml_text_is_exactly_the_manifest_data(mode):
    assert yaml.safe_load(manifest.to_yaml(manifest.build(mode, PUBLIC))) == manifest.build(mode, PUBLIC)


def test_yaml_quotes_what_yaml_would_misread():
    text = manifest.to_yaml({"a": "yes", "b": "x: y", "c": "#1", "d": "on", "e": "plain", "f": [], "g": "12"})
    assert yaml.safe_load(text) == {"a": "yes", "b": "x: y", "c": "#1", "d": "on", "e": "plain", "f": [], "g": "12"}


def test_command_runs_before_any_secret_is_configured(tmp_path):
    """An operator runs `ssrelay manifest` first: no SS or Slack secrets exist yet."""
    (tmp_path / "ssrelay.toml").write_text('[http]\npublic_url = "https://relay.corp.example"\n'
                                           '[secret_server]\nbase_url = "https://ss.corp.example/SecretServer"\n')
    out = run(env={"SSRELAY_CONFIG": str(tmp_path / "ssrelay.toml")})
    assert out.returncode == 0, out.stderr
    m = yaml.safe_load(out.stdout)
    validate(m)
    assert m["settings"]["interactivity"]["request_url"] == "https://relay.corp.example/slack/events"
    assert out.stderr == ""
    assert "SSRELAY_SLACK_SIGNING_SECRET" in out.stdout     # the comment says where the tokens go


def test_command_follows_slack_mode_from_the_environment():
    out = run(env={"SSRELAY_SLACK_MODE": "socket"})
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["settings"]["socket_mode_enabled"] is True
    assert "SSRELAY_SLACK_APP_TOKEN" in out.stdout


def test_command_warns_when_http_mode_has_no_https_public_url():
    out = run("--mode", "http", "--public-url", "http://localhost:3000")
    assert out.returncode == 0
    assert "must reach it over HTTPS" in out.stderr


def test_command_names_a_bad_mode():
    out = run(env={"SSRELAY_SLACK_MODE": "webhook"})
    assert out.returncode == 2 and "slack.mode" in out.stderr
