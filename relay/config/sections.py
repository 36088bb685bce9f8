"""The typed configuration: one frozen dataclass per section, and `Config` holding them.
Each field matches a key of `SCHEMA`; a difference stops the import, naming the key."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .schema import SCHEMA
from .values import Secret


@dataclass(frozen=True)
class SecretServerSection:
    base_url: str
    username: str
    password: Secret
    domain: str
    verify_tls: bool | str
    timeout_seconds: float
    timezone: str
    auth: str
    secret_url: str
    request_url: str


@dataclass(frozen=True)
class SlackSection:
    mode: str
    api_url: str
    approver_messages: str
    bot_token: Secret
    signing_secret: Secret
    app_token: Secret
    rate_limits: dict[str, float]
    unready_after_failing_seconds: float
    unready_after_pending_seconds: float


@dataclass(frozen=True)
class PollSection:
    interval_seconds: float
    catch_up_hours: float


@dataclass(frozen=True)
class UsersSection:
    match_by_email: bool
    email_cache_hours: float
    signin_requires_email_match: bool


@dataclass(frozen=True)
class ApprovalsSection:
    default_duration_hours: float
    notify_expiry: bool
    ask_reason: bool
    remind_after_minutes: float
    confirm_to_requester: bool
    sensitive_folders: tuple[str, ...]


@dataclass(frozen=True)
class HttpSection:
    host: str
    port: int
    public_url: str
    admin_host: str
    admin_port: int | None     # None: no admin listener (/metrics, detailed /readyz on `port`)


@dataclass(frozen=True)
class StorageSection:
    path: str
    encryption_key: Secret
    retention_days: float
    busy_timeout_seconds: float


@dataclass(frozen=True)
class NudgeSection:
    token: Secret


SECTIONS: dict[str, type] = {
    "secret_server": SecretServerSection,
    "slack": SlackSection,
    "poll": PollSection,
    "users": UsersSection,
    "approvals": ApprovalsSection,
    "http": HttpSection,
    "storage": StorageSection,
    "nudge": NudgeSection,
}


@dataclass(frozen=True)
class Config:
    secret_server: SecretServerSection
    slack: SlackSection
    poll: PollSection
    users: UsersSection
    approvals: ApprovalsSection
    http: HttpSection
    storage: StorageSection
    nudge: NudgeSection
    source: str = ""                  # the TOML file read; "" when the environment was the only source
    warnings: tuple[str, ...] = ()    # settings that were ignored (unknown SSRELAY_* variables)
    channels: tuple = ()              # [[channels]] routes (relay.routes.ChannelRoute), first match wins

    def secret_url(self, secret_id: int) -> str:
        return self.secret_server.secret_url.format(base_url=self.secret_server.base_url, id=secret_id)

    def request_url(self, request_id: int, secret_id: int) -> str:
        """Where a person acts on an access request in Secret Server itself ("Open in Secret
        Server"): by default the secret's page, where SS shows its pending request."""
        return self.secret_server.request_url.format(base_url=self.secret_server.base_url,
                                                     id=request_id, secret_id=secret_id)


def section_keys(section: str) -> list[str]:
    """The keys of one section, in the order of its dataclass."""
    return [f.name for f in fields(SECTIONS[section])]


def _sections_match_schema() -> None:
    """A key added to SCHEMA needs its field in the section's dataclass (and back): say so at
    import, by name, rather than as a TypeError at the first load."""
    differences = []
    for section in sorted({s for s, _ in SCHEMA} | set(SECTIONS)):
        declared = {k for s, k in SCHEMA if s == section}
        typed = set(section_keys(section)) if section in SECTIONS else set()
        if declared != typed:
            differences.append(f"[{section}] only in SCHEMA: {sorted(declared - typed)}, "
                               f"only in its dataclass: {sorted(typed - declared)}")
    if differences:
        raise RuntimeError("relay.config: SCHEMA and the section dataclasses differ (add each key to "
                           "both): " + "; ".join(differences))


_sections_match_schema()
