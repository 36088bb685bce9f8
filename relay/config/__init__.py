"""Configuration: TOML file, then `SSRELAY_<SECTION>_<KEY>` environment overrides, then
`<key>_file` for secrets. Validation stops start-up with one line per bad key.

`load` runs three steps: `parse` (the TOML file, refusing unknown sections and keys),
`merge_environment` (environment variables over the file, secrets from their files), and
`validate` (each value checked, every problem collected, typed sections built).

Every key is declared once in `SCHEMA` and once as a field of its section's frozen dataclass
(a test keeps the two in step); `config.example.toml` documents each of them.

The modules, one job each: `values` (Secret and the value parsers), `schema` (keys, defaults,
variable names), `sections` (the typed dataclasses and `Config`), `suggestions` ("did you
mean" for unknown settings), `loading` (parse -> environment merge -> validate).
"""

from .loading import (_checked, _known_in_file, _mode_problems, _raise, _secret_from_file, default_path,
                      has_channels, load, merge_environment, parse, read_file, read_keys, structure_problems,
                      validate)
from .schema import (CHANNELS_VARIABLE, ENV_PREFIX, FILE_HINT, OTHER_VARIABLES, SCHEMA, SECRET_KEYS, env_name,
                     known_variables)
from .sections import (SECTIONS, ApprovalsSection, Config, HttpSection, NudgeSection, PollSection,
                       SecretServerSection, SlackSection, StorageSection, UsersSection, section_keys)
from .suggestions import _did_you_mean, unknown_environment, unknown_key
from .values import (Secret, _api_url, _bool, _channels, _choice, _fernet_key, _folder_list, _number,
                     _optional_port, _rate_table, _request_url, _str, _tz, _url, _verify)

__all__ = [
    "CHANNELS_VARIABLE", "ENV_PREFIX", "FILE_HINT", "OTHER_VARIABLES", "SCHEMA", "SECRET_KEYS", "SECTIONS",
    "ApprovalsSection", "Config", "HttpSection", "NudgeSection", "PollSection", "Secret", "SecretServerSection",
    "SlackSection", "StorageSection", "UsersSection",
    "default_path", "env_name", "has_channels", "known_variables", "load", "merge_environment", "parse",
    "read_file", "read_keys", "section_keys", "structure_problems", "unknown_environment", "unknown_key",
    "validate",
    # the parsers and steps' parts, for their unit tests
    "_api_url", "_bool", "_channels", "_checked", "_choice", "_did_you_mean", "_fernet_key", "_folder_list",
    "_known_in_file", "_mode_problems", "_number", "_optional_port", "_raise", "_rate_table", "_request_url",
    "_secret_from_file", "_str", "_tz", "_url", "_verify",
]
