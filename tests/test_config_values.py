"""Each config value check and each step of `config.load`, pinned with literal inputs and
outputs (pure: no stand-ins, no subprocesses)."""

from __future__ import annotations

import json
import os

import pytest
from cryptography.fernet import Fernet

from relay import config
from relay.config import Secret
from relay.errors import ConfigError, ConfigProblems

MINIMAL = {
    "SSRELAY_SECRET_SERVER_BASE_URL": "https://ss.example.com/SecretServer",
    "SSRELAY_SECRET_SERVER_USERNAME": "svc",
    "SSRELAY_SECRET_SERVER_PASSWORD": "pw-very-secret",
    "SSRELAY_SLACK_BOT_TOKEN": "xoxb-123-secret",
    "SSRELAY_SLACK_SIGNING_SECRET": "sign-secret-1",
}


def refused(check, value) -> str:
    with pytest.raises(ValueError) as e:
        check(value)
    return str(e.value)


# ---------------------------------------------------------------------- value checks
@pytest.mark.parametrize("value", [True, "true", "TRUE", "1", "yes", "on", "On"])
def test_bool_true(value):
    assert config._bool(value) is True


@pytest.mark.parametrize("value", [False, "false", "False", "0", "no", "off", "OFF"])
def test_bool_false(value):
    assert config._bool(value) is False


@pytest.mark.parametrize("value", ["maybe", "", 1, 0, None, "2"])
def test_bool_refuses_anything_else(value):
    assert refused(config._bool, value) == "true or false"


def test_number_bounds_are_inclusive_and_named():
    check = config._number(1, 300)
    assert check(1) == 1.0 and check(300) == 300.0 and check("15") == 15.0 and check(2.5) == 2.5
    for bad in (0.999, 300.5, True, "x", None, -1):
        assert refused(check, bad) == "a number from 1 to 300"


def test_integer_bounds_refuse_fractions():
    port = config._number(0, 65535, int)
    assert port(0) == 0 and port(65535) == 65535 and port("80") == 80 and port(3000.0) == 3000
    assert isinstance(port(3000.0), int)
    for bad in (3000.5, 65536, -1, False, "eighty"):
        assert refused(port, bad) == "an integer from 0 to 65535"


def test_urls():
    assert config._url("https://ss.example.com/SecretServer/") == "https://ss.example.com/SecretServer"
    assert config._url("http://127.0.0.1:3000") == "http://127.0.0.1:3000"
    assert config._api_url("https://slack.com/api") == "https://slack.com/api/"
    assert config._api_url("https://slack.com/api/") == "https://slack.com/api/"
    for bad in ("ftp://x.example", "https://", "ss.example.com", 5, None):
        assert refused(config._url, bad) == "an http(s) URL"


def test_strings_and_choices():
    assert config._str("") == "" and config._str("svc") == "svc"
    assert refused(config._str, 5) == "a string"
    mode = config._choice("http", "socket")
    assert mode("socket") == "socket"
    assert refused(mode, "htp") == 'one of "http", "socket"'


def test_verify_tls(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert config._verify(True) is True and config._verify(False) is False
    assert config._verify("TRUE") is True and config._verify("false") is False
    assert config._verify(str(bundle)) == str(bundle)
    for bad in (str(tmp_path / "missing.pem"), str(tmp_path), 1, "yes"):
        assert refused(config._verify, bad) == "true, false, or the path of an existing CA bundle file"


def test_time_zone():
    assert config._tz("Europe/Berlin") == "Europe/Berlin" and config._tz("UTC") == "UTC"
    for bad in ("Mars/Base", 5, "../etc/passwd"):
        assert refused(config._tz, bad) == 'an IANA time zone name such as "UTC" or "Europe/Berlin"'


def test_rate_table():
    assert config._rate_table({"chat.update": 50}) == {"chat.update": 50.0}
    assert config._rate_table('{"chat.postMessage": 60.5}') == {"chat.postMessage": 60.5}
    assert config._rate_table({}) == {}
    expected = 'a table of Slack method = calls per minute, e.g. {"chat.postMessage" = 60}'
    for bad in ("{not json", {"chat.update": 0}, {"chat.update": -1}, {"chat.update": True},
                {"chat.update": "60"}, ["chat.update"], "[1]"):
        assert refused(config._rate_table, bad) == expected


def test_fernet_key():
    key = Fernet.generate_key().decode()
    assert config._fernet_key(key) == key and config._fernet_key("") == ""
    for bad in ("not-a-key", "YWJj", key[:-4]):
        assert refused(config._fernet_key, bad) == "a Fernet key (run `ssrelay keygen` to make one)"


# ---------------------------------------------------------------------- Secret
def test_secret_shows_only_asterisks_and_compares_by_value():
    s = Secret("hunter2")
    assert repr(s) == str(s) == f"{s}" == "Secret('********')"
    assert repr(Secret("")) == "Secret('')"
    assert bool(s) and not Secret("")
    assert s == Secret("hunter2") and s != Secret("other") and s != "hunter2"
    assert hash(s) == hash(Secret("hunter2")) and len({s, Secret("hunter2")}) == 1
    assert s.value == "hunter2"


# ---------------------------------------------------------------------- the steps
def test_default_path_order():
    assert config.default_path("given.toml", {"SSRELAY_CONFIG": "env.toml"}) == "given.toml"
    assert config.default_path(None, {"SSRELAY_CONFIG": "env.toml"}) == "env.toml"
    assert config.default_path(None, {}) == "ssrelay.toml"


def test_parse_reads_the_file_and_names_its_source(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[poll]\ninterval_seconds = 5\n")
    assert config.parse(str(f), {}) == (str(f), {"poll": {"interval_seconds": 5}})
    assert config.parse(str(f), {}, use_file=False) == ("", {})
    assert config.parse(None, {"SSRELAY_CONFIG": str(tmp_path / "none.toml")}) == ("", {})
    with pytest.raises(ConfigError) as e:
        config.parse(None, {"SSRELAY_CONFIG": str(tmp_path / "none.toml")}, require_file=True)
    assert str(e.value) == f"config: {tmp_path / 'none.toml'}: {config.FILE_HINT}"
    with pytest.raises(ConfigError, match=r"^config: .*none\.toml: a readable TOML file"):
        config.parse(str(tmp_path / "none.toml"), {})
    f.write_text("[poll\n")
    with pytest.raises(ConfigError, match=r"^config: .*c\.toml: valid TOML \("):
        config.parse(str(f), {})


def test_file_structure_problems():
    raw = {"poll": 5, "slack": {"bot_token_file": "/x", "mode_file": "/y", "mode": "http"},
           "secret_server": {"password_file": "/p"}}
    assert [str(p) for p in config.structure_problems(raw)] == [
        "config: poll: a table",
        "config: slack.mode_file: unknown setting; did you mean slack.mode?"]


def test_environment_wins_over_the_file_and_secrets_come_from_files(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")
    token = tmp_path / "token"
    token.write_text("xoxb-from-env-file")
    raw = {"poll": {"interval_seconds": 30}, "secret_server": {"password_file": str(pw)},
           "slack": {"bot_token": "xoxb-in-file", "bot_token_file": "/never/read"}}
    merged = config.merge_environment(raw, {"SSRELAY_POLL_INTERVAL_SECONDS": "5"})
    assert merged[("poll", "interval_seconds")] == "5"
    assert merged[("secret_server", "password")] == "from-file"
    assert merged[("slack", "bot_token")] == "xoxb-in-file"          # given: its _file is not read
    assert merged[("poll", "catch_up_hours")] is None                  # not given anywhere
    merged = config.merge_environment(raw, {"SSRELAY_SECRET_SERVER_PASSWORD": "",
                                            "SSRELAY_SECRET_SERVER_PASSWORD_FILE": str(token)})
    assert merged[("secret_server", "password")] == "xoxb-from-env-file"   # the variable's file wins


def test_unreadable_secret_file_names_the_key(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.merge_environment({}, {"SSRELAY_SLACK_BOT_TOKEN_FILE": str(tmp_path / "missing")})
    assert str(e.value) == (f"config: slack.bot_token_file: a readable file (No such file or directory) "
                            f"(got '{tmp_path / 'missing'}')")


def test_validate_applies_defaults_and_types():
    merged = config.merge_environment({}, MINIMAL)
    cfg = config.validate(merged, source="x.toml", warnings=["w"])
    assert cfg.source == "x.toml" and cfg.warnings == ("w",)
    assert cfg.http.port == 3000 and cfg.http.host == "0.0.0.0" and cfg.poll.catch_up_hours == 24
    assert cfg.slack.app_token == Secret("") and cfg.storage.encryption_key == Secret("")
    assert cfg.secret_url(42) == "https://ss.example.com/SecretServer/app/#/secrets/42/general"


def test_bad_secret_values_are_named_but_not_shown():
    with pytest.raises(ConfigError) as e:
        config.validate(config.merge_environment({}, {**MINIMAL, "SSRELAY_STORAGE_ENCRYPTION_KEY": "k3y-s3cret"}))
    assert str(e.value) == ("config: storage.encryption_key: expected a Fernet key (run `ssrelay keygen` "
                            "to make one)")


@pytest.mark.parametrize("mode, missing, variable", [("http", "signing_secret", "SSRELAY_SLACK_SIGNING_SECRET"),
                                                     ("socket", "app_token", "SSRELAY_SLACK_APP_TOKEN")])
def test_each_mode_needs_its_credential(mode, missing, variable):
    env = {**MINIMAL, "SSRELAY_SLACK_MODE": mode, "SSRELAY_SLACK_SIGNING_SECRET": "", "SSRELAY_SLACK_APP_TOKEN": ""}
    with pytest.raises(ConfigError) as e:
        config.load(environ=env, use_file=False)
    assert str(e.value) == f'config: slack.{missing}: is required when slack.mode = "{mode}" (or {variable})'
    assert config.load(environ={**env, variable: "given"}, use_file=False).slack.mode == mode


def test_a_bad_mode_is_one_problem_not_two():
    with pytest.raises(ConfigError) as e:
        config.load(environ={**MINIMAL, "SSRELAY_SLACK_MODE": "htp", "SSRELAY_SLACK_SIGNING_SECRET": ""},
                    use_file=False)
    assert [p.key for p in e.value.problems] == ["slack.mode"]


def test_several_problems_are_one_error_with_a_line_each():
    with pytest.raises(ConfigProblems) as e:
        config.load(environ={**MINIMAL, "SSRELAY_HTTP_PORT": "x", "SSRELAY_POLL_INTERVAL_SECONDS": "0"},
                    use_file=False)
    assert str(e.value).splitlines() == [
        "config: poll.interval_seconds: expected a number from 1 to 3600 (got '0')",
        "config: http.port: expected an integer from 0 to 65535 (got 'x')"]
    assert e.value.key == "poll.interval_seconds"
    assert e.value.detail == ("poll.interval_seconds: expected a number from 1 to 3600 (got '0'); "
                              "http.port: expected an integer from 0 to 65535 (got 'x')")


def test_load_names_the_file_it_read(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[slack]\nrate_limits = {"chat.update" = 5}\n')
    cfg = config.load(str(f), MINIMAL)
    assert cfg.source == str(f) and cfg.slack.rate_limits == {"chat.update": 5.0}
    assert config.load(str(f), MINIMAL, use_file=False).source == ""


# ---------------------------------------------------------------------- read_keys
def test_read_keys_env_over_file_over_default(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[http]\npublic_url = "https://file.example"\n[slack]\nmode = "socket"\n')
    keys = [("slack", "mode"), ("http", "public_url"), ("storage", "path")]
    assert config.read_keys(keys, str(f), {"SSRELAY_SLACK_MODE": "http"}) == {
        ("slack", "mode"): "http", ("http", "public_url"): "https://file.example", ("storage", "path"): "ssrelay.db"}
    assert config.read_keys(keys, None, {"SSRELAY_CONFIG": str(tmp_path / "none.toml")})[("slack", "mode")] == "http"


def test_read_keys_refuses_secrets_bad_values_and_missing_required(tmp_path):
    with pytest.raises(ValueError, match="read_keys is for plain settings, not slack.bot_token"):
        config.read_keys([("slack", "bot_token")], None, {})
    with pytest.raises(ConfigError) as e:
        config.read_keys([("slack", "mode")], None, {"SSRELAY_SLACK_MODE": "htp", "SSRELAY_CONFIG": "/none.toml"})
    assert str(e.value) == 'config: slack.mode: expected one of "http", "socket" (got \'htp\')'
    with pytest.raises(ConfigError) as e:
        config.read_keys([("secret_server", "base_url")], None, {"SSRELAY_CONFIG": "/none.toml"})
    assert str(e.value) == "config: secret_server.base_url: is required (or SSRELAY_SECRET_SERVER_BASE_URL)"
    with pytest.raises(ConfigError, match="a readable TOML file"):
        config.read_keys([("slack", "mode")], str(tmp_path / "none.toml"), {})
    f = tmp_path / "c.toml"
    f.write_text("slack = 5\n")             # not a table: the default stands
    assert config.read_keys([("slack", "mode")], str(f), {}) == {("slack", "mode"): "http"}


def test_known_variables_cover_settings_secret_files_and_the_config_path():
    known = config.known_variables()
    assert {"SSRELAY_CONFIG", "SSRELAY_CHANNELS", "SSRELAY_HTTP_PORT", "SSRELAY_SLACK_BOT_TOKEN_FILE"} <= known
    assert "SSRELAY_HTTP_PORT_FILE" not in known
    assert len(known) == len(config.SCHEMA) + len(config.SECRET_KEYS) + 2   # + the config path, [[channels]]
    assert json.dumps(config.unknown_environment({"PATH": "/bin", "SSRELAY_HTTP_PORT": "1"})) == "[]"


# ---------------------------------------------------------------------- edges the checks above leave open
def test_edges_of_urls_rates_and_hashes():
    assert config._url("https://x.example/SSX/") == "https://x.example/SSX"
    assert config._rate_table({"chat.update": 0.5}) == {"chat.update": 0.5}
    assert hash(Secret("a-secret")) != hash(Secret("another"))


def test_an_empty_value_is_required_or_checked_never_silently_defaulted():
    with pytest.raises(ConfigError, match=r"^config: slack\.bot_token: is required"):
        config.load(environ={**MINIMAL, "SSRELAY_SLACK_BOT_TOKEN": ""}, use_file=False)
    with pytest.raises(ConfigError, match=r"^config: secret_server\.username: is required"):
        config.load(environ={**MINIMAL, "SSRELAY_SECRET_SERVER_USERNAME": ""}, use_file=False)
    with pytest.raises(ConfigError, match=r"^config: http\.port: expected an integer"):
        config.load(environ={**MINIMAL, "SSRELAY_HTTP_PORT": ""}, use_file=False)
    assert config.load(environ={**MINIMAL, "SSRELAY_SECRET_SERVER_DOMAIN": ""}, use_file=False).secret_server.domain == ""


def test_process_environment_and_working_directory_are_the_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("SSRELAY_")]:
        monkeypatch.delenv(name)
    for name, value in MINIMAL.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SSRELAY_POLL_INTERVAL_SECONDS", "7")
    cfg = config.load()                                 # no ./ssrelay.toml: fine unless required
    assert cfg.poll.interval_seconds == 7 and cfg.source == ""
    assert config.read_keys([("poll", "interval_seconds")]) == {("poll", "interval_seconds"): 7}
    assert config.default_path() == "ssrelay.toml"
    monkeypatch.setenv("SSRELAY_CONFIG", str(tmp_path / "elsewhere.toml"))
    (tmp_path / "elsewhere.toml").write_text("[users]\nemail_cache_hours = 2\n")
    assert config.default_path() == str(tmp_path / "elsewhere.toml")
    assert config.load().users.email_cache_hours == 2
    assert config.read_keys([("users", "email_cache_hours")]) == {("users", "email_cache_hours"): 2}
    with pytest.raises(ConfigError, match="a readable TOML file"):
        config.load(environ=MINIMAL, require_file=True)


def test_the_config_variable_in_the_given_environment_names_the_file(tmp_path):
    f = tmp_path / "given.toml"
    f.write_text("[poll]\ninterval_seconds = 9\n")
    env = {**MINIMAL, "SSRELAY_CONFIG": str(f)}
    assert config.load(environ=env).poll.interval_seconds == 9
    assert config.read_keys([("poll", "interval_seconds")], None, env) == {("poll", "interval_seconds"): 9}
    assert config.validate(config.merge_environment({}, MINIMAL)).source == ""


def test_request_url_template_may_use_only_its_three_fields():
    good = "{base_url}/app/#/requests/{id}?secret={secret_id}"
    assert config._request_url(good) == good
    assert config._request_url("https://fixed.example/") == "https://fixed.example/"
    for bad in ("{base_url}/{request}", "{0}", "{base_url", "}{"):
        assert refused(config._request_url, bad) == "a URL template using only {base_url}, {id} and {secret_id}"
    assert refused(config._request_url, 5) == "a string"


# ---------------------------------------------------------------------- [[channels]] routes
def test_channels_from_toml_tables_and_from_a_json_array():
    from relay.routes import ChannelRoute
    tables = [{"folder": "\\Production", "channel": "C0123"},
              {"folder": "/Db", "channel": "G99", "personal": True},
              {"folder": "Web", "channel": "C7", "personal": "false"}]
    want = (ChannelRoute("\\Production", "C0123", False), ChannelRoute("/Db", "G99", True),
            ChannelRoute("Web", "C7", False))
    assert config._channels(tables) == want
    assert config._channels(json.dumps(tables)) == want
    assert config._channels("") == () and config._channels("  ") == () and config._channels([]) == ()


@pytest.mark.parametrize(("value", "message"), [
    ("{not json", "config: channels: a JSON array of {folder, channel, personal} tables"),
    ('{"folder": "x"}', "config: channels: an array of tables: [[channels]] with folder and channel"),
    ({"folder": "x"}, "config: channels: an array of tables: [[channels]] with folder and channel"),
    (["C1"], "config: channels[0]: a table with folder and channel"),
    ([{"folder": "\\A", "channel": "C1"}, {"folder": "\\B", "channel": "C2", "room": 1, "color": 2}],
     "config: channels[1].color: a known key: folder, channel, personal"),
    ([{"channel": "C1"}], "config: channels[0].folder: a folder path such as '\\Production'"),
    ([{"folder": "\\/ ", "channel": "C1"}],
     "config: channels[0].folder: a folder path such as '\\Production' (got '\\\\/ ')"),
    ([{"folder": 5, "channel": "C1"}], "config: channels[0].folder: a folder path such as '\\Production' (got 5)"),
    ([{"folder": "\\A", "channel": "#db-team"}],
     "config: channels[0].channel: a channel id such as C0123456789 (not its #name) (got '#db-team')"),
    ([{"folder": "\\A", "channel": "D123"}],
     "config: channels[0].channel: a channel id such as C0123456789 (not its #name) (got 'D123')"),
    ([{"folder": "\\A", "channel": "C12-3"}],
     "config: channels[0].channel: a channel id such as C0123456789 (not its #name) (got 'C12-3')"),
    ([{"folder": "\\A", "channel": ""}],
     "config: channels[0].channel: a channel id such as C0123456789 (not its #name) (got '')"),
    ([{"folder": "\\A"}], "config: channels[0].channel: a channel id such as C0123456789 (not its #name)"),
    ([{"folder": "\\A", "channel": "C1", "personal": "sometimes"}],
     "config: channels[0].personal: true or false (got 'sometimes')"),
])
def test_channels_refuse_with_the_route_and_key_named(value, message):
    with pytest.raises(ConfigError) as e:
        config._channels(value)
    assert str(e.value) == message


def test_has_channels_reads_the_environment_first_then_the_file(tmp_path):
    path = tmp_path / "ssrelay.toml"
    path.write_text('[[channels]]\nfolder = "\\\\Production"\nchannel = "C0123"\n', encoding="utf-8")
    assert config.has_channels(str(path), {}) is True
    assert config.has_channels(str(path), {"SSRELAY_CHANNELS": "[]"}) is False
    assert config.has_channels(None, {"SSRELAY_CHANNELS": '[{"folder": "/A", "channel": "G1"}]'}) is True
    assert config.has_channels(str(tmp_path / "missing.toml"), {}) is False
    assert config.has_channels(None, {"SSRELAY_CONFIG": str(path)}) is True
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    assert config.has_channels(str(empty), {}) is False


# ---------------------------------------------------------------------- folder lists, optional ports
def test_folder_list_from_an_array_or_json():
    assert config._folder_list(["\\Production", "/Db"]) == ("\\Production", "/Db")
    assert config._folder_list(("\\A",)) == ("\\A",)
    assert config._folder_list('["\\\\Production"]') == ("\\Production",)
    assert config._folder_list("") == () and config._folder_list(" ") == () and config._folder_list([]) == ()


@pytest.mark.parametrize("value", ["[oops", '"\\\\A"', ["\\/ "], ["\\A", 3], [""], 5, {"a": 1}])
def test_folder_list_refuses_anything_else(value):
    assert refused(config._folder_list, value) == 'an array of folder paths, e.g. ["\\\\Production"]'


def test_optional_port():
    assert config._optional_port(None) is None and config._optional_port("") is None
    assert config._optional_port("  ") is None
    assert config._optional_port(0) == 0 and config._optional_port("8080") == 8080
    assert config._optional_port(65535) == 65535
    assert type(config._optional_port("8080")) is int
    for bad in (-1, 65536, "x"):
        with pytest.raises(ValueError):
            config._optional_port(bad)


# ---------------------------------------------------------------------- schema, names, file structure
def test_schema_and_section_dataclasses_must_list_the_same_keys(monkeypatch):
    from relay.config import sections
    assert sections._sections_match_schema() is None
    assert config.section_keys("slack")[:3] == ["mode", "api_url", "approver_messages"]
    schema = dict(config.SCHEMA)
    schema[("slack", "colour")] = ("red", config._str)
    schema[("extra", "knob")] = (1, config._str)
    del schema[("slack", "mode")]
    monkeypatch.setattr(sections, "SCHEMA", schema)
    with pytest.raises(RuntimeError) as e:
        sections._sections_match_schema()
    assert str(e.value) == (
        "relay.config: SCHEMA and the section dataclasses differ (add each key to both): "
        "[extra] only in SCHEMA: ['knob'], only in its dataclass: []; "
        "[slack] only in SCHEMA: ['colour'], only in its dataclass: ['mode']")


def test_unknown_settings_are_named_with_the_closest_known_one():
    assert config.unknown_key("slak", ["slack", "poll"]) == "unknown setting; did you mean slack?"
    assert config.unknown_key("zzz", ["slack", "poll"]) == \
        "unknown setting (config.example.toml lists every one)"
    assert config.unknown_key("P_slak", ["P_slack", "P_sla", "Q_slack"], "P_") == \
        "unknown setting; did you mean P_slack?"
    assert config._did_you_mean("P_xyz", ["P_xyw", "Q_xyz"], "P_") == "; did you mean P_xyw?"
    assert config._did_you_mean("abcd", ["abcx", "abxx"]) == "; did you mean abcx?"
    assert config._did_you_mean("abcd", ["wxyz"]) == ""
    assert config._did_you_mean("abcdef", ["abcxyz"]) == ""          # similarity 0.5, below 0.6
    assert config.unknown_environment({"SSRELAY_SLACK_BOT_TOKN": "x", "SSRELAY_CONFIG": "a.toml",
                                       "SSRELAY_CHANNELS": "[]", "HOME": "/root", "SSRELAY_ZZZZZZZZ": "1"}) == [
        "SSRELAY_SLACK_BOT_TOKN: unknown setting; did you mean SSRELAY_SLACK_BOT_TOKEN? (ignored)",
        "SSRELAY_ZZZZZZZZ: unknown setting (config.example.toml lists every one) (ignored)"]


def test_structure_problems_skip_channels_and_name_unknown_sections():
    raw = {"channels": [{"folder": "\\A", "channel": "C1"}], "slak": {}, "poll": 5,
           "slack": {"mode": "http", "bot_tokn": "x", "bot_token_file": "/run/t"}}
    assert [str(p) for p in config.structure_problems(raw)] == [
        "config: [slak]: unknown setting; did you mean slack?",
        "config: poll: a table",
        "config: slack.bot_tokn: unknown setting; did you mean slack.bot_token?"]


def test_load_takes_channels_from_the_file_or_the_environment_and_keeps_warnings(tmp_path):
    from relay.routes import ChannelRoute
    path = tmp_path / "ssrelay.toml"
    path.write_text('[[channels]]\nfolder = "\\\\Production"\nchannel = "C0123"\npersonal = true\n',
                    encoding="utf-8")
    cfg = config.load(str(path), {**MINIMAL, "SSRELAY_TYPO": "1"})
    assert cfg.channels == (ChannelRoute("\\Production", "C0123", True),)
    assert cfg.warnings == ("SSRELAY_TYPO: unknown setting (config.example.toml lists every one) (ignored)",)
    env = {**MINIMAL, "SSRELAY_CHANNELS": '[{"folder": "/Db", "channel": "G1"}]'}
    assert config.load(str(path), env).channels == (ChannelRoute("/Db", "G1", False),)
    assert config.load(str(path), env).warnings == ()
    assert config.load(None, MINIMAL, use_file=False).channels == ()


def test_optional_port_refuses_a_fraction_as_not_an_integer():
    assert refused(config._optional_port, "80.5") == "an integer from 0 to 65535"
    assert refused(config._optional_port, 80.5) == "an integer from 0 to 65535"


def test_folder_names_made_of_x_are_folders_too():
    from relay.routes import ChannelRoute
    assert config._folder_list(["\\XX"]) == ("\\XX",)
    assert config._channels([{"folder": "X", "channel": "C1"}]) == (ChannelRoute("X", "C1", False),)


def test_has_channels_reads_the_process_environment_by_default(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SSRELAY_CONFIG", raising=False)
    monkeypatch.setenv("SSRELAY_CHANNELS", '[{"folder": "/A", "channel": "G1"}]')
    assert config.has_channels() is True
    monkeypatch.setenv("SSRELAY_CHANNELS", "[]")
    assert config.has_channels() is False


def test_request_url_accepts_format_specs_that_fit_a_url_and_numbers():
    template = "{base_url:s}/app/#/secrets/{secret_id:d}/requests/{id:d}"
    assert config._request_url(template) == template
