"""A ready-made sandbox: both stand-ins on loopback, a small cast of people, and a Config
that points the relay at them. Used by `ssrelay demo` and by the tests' stories."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.fernet import Fernet

from .. import config as config_mod
from .secret_server import SecretServerStandIn
from .slack import SlackStandIn

RELAY_USERNAME = "svc-slack-relay"
RELAY_PASSWORD = "relay-Pa55word!"
SIGNING_SECRET = "sandbox-signing-secret-0123456789"
BOT_TOKEN = "xoxb-sandbox"
APP_TOKEN = "xapp-1-sandbox"


@dataclass
class Person:
    name: str
    ss_id: int
    slack_id: str
    password: str
    email: str


@dataclass
class Sandbox:
    ss: SecretServerStandIn
    slack: SlackStandIn
    people: dict[str, Person] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    secrets: dict[str, int] = field(default_factory=dict)
    relay_ss_id: int = 0
    encryption_key: str = field(default_factory=lambda: Fernet.generate_key().decode())

    def __getitem__(self, name: str) -> Person:
        return self.people[name]

    def add_person(self, name: str, *, display_name: str | None = None, slack: bool = True,
                   otp: str | None = None) -> Person:
        password = f"{name}-Pa55!"
        email = f"{name}@example.com"
        ss_id = self.ss.add_user(name, password, display_name=display_name or name.title(), email=email, otp=otp)
        slack_id = f"U{name.upper()[:8]}"
        if slack:
            self.slack.add_user(slack_id, email=email, name=name, real_name=display_name or name.title())
        self.people[name] = Person(name, ss_id, slack_id, password, email)
        return self.people[name]

    def environ(self, db_path: str, **overrides: str) -> dict[str, str]:
        env = {
            # a platform tenant is configured by its own address; the relay finds the vault
            "SSRELAY_SECRET_SERVER_BASE_URL": self.ss.platform_url if self.ss.platform else self.ss.base_url,
            "SSRELAY_SECRET_SERVER_USERNAME": RELAY_USERNAME,
            "SSRELAY_SECRET_SERVER_PASSWORD": RELAY_PASSWORD,
            "SSRELAY_SECRET_SERVER_TIMEOUT_SECONDS": "5",
            "SSRELAY_SLACK_API_URL": self.slack.api_url,
            "SSRELAY_SLACK_BOT_TOKEN": BOT_TOKEN,
            "SSRELAY_SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SSRELAY_SLACK_APP_TOKEN": APP_TOKEN,
            "SSRELAY_POLL_INTERVAL_SECONDS": "1",
            "SSRELAY_HTTP_HOST": "127.0.0.1",
            "SSRELAY_HTTP_PORT": "0",
            "SSRELAY_STORAGE_PATH": db_path,
            "SSRELAY_STORAGE_ENCRYPTION_KEY": self.encryption_key,
            "SSRELAY_SLACK_RATE_LIMITS": '{"chat.postMessage": 6000, "chat.postEphemeral": 6000, '
                                         '"chat.update": 6000, "conversations.open": 6000, '
                                         '"users.lookupByEmail": 6000, "views.publish": 6000}',
        }
        env.update({k if k.startswith("SSRELAY_") else f"SSRELAY_{k.upper()}": v for k, v in overrides.items()})
        return env

    def config(self, db_path: str, **overrides: str) -> config_mod.Config:
        return config_mod.load(environ=self.environ(db_path, **overrides), use_file=False)

    def stop(self) -> None:
        self.slack.stop()
        self.ss.stop()


def start(*, cast: bool = True, platform: bool = False) -> Sandbox:
    """Start both stand-ins; with `cast`, add the standard people, groups and secrets:
    rita requests, alice and bob approve (group "DB Approvers"), the relay account watches.
    `platform`: Secret Server sits behind a Delinea Platform tenant (the relay account is
    its service user)."""
    ss = SecretServerStandIn(platform=platform).start()
    slack = SlackStandIn(bot_token=BOT_TOKEN, app_token=APP_TOKEN).start()
    sb = Sandbox(ss, slack)
    if cast:
        relay_id = ss.add_user(RELAY_USERNAME, RELAY_PASSWORD, display_name="Slack relay",
                               email="relay@example.com")
        sb.relay_ss_id = relay_id
        sb.add_person("rita", display_name="Rita Requester")
        sb.add_person("alice", display_name="Alice Approver")
        sb.add_person("bob", display_name="Bob Approver")
        sb.groups["approvers"] = ss.add_group("DB Approvers", [sb["alice"].ss_id, sb["bob"].ss_id, relay_id])
        folder = ss.add_folder("Databases", path="\\Production\\Databases")
        everyone = [sb[n].ss_id for n in ("rita", "alice", "bob")]
        sb.secrets["prod-db"] = ss.add_secret(
            "prod-db", folder_id=folder, template_name="SQL Server Account", viewers=everyone,
            requires_approval=True, approvers=[sb.groups["approvers"]],
            fields={"password": "SANDBOX-FIELD-VALUE-prod-db"},
            launchers=[{"launcherId": 7, "launcherName": "SQL Server Management Studio",
                        "promptedField": False, "restrictedHosts": []}])
        sb.secrets["wiki-admin"] = ss.add_secret(
            "wiki-admin", folder_id=folder, template_name="Web Password", viewers=everyone,
            requires_approval=True, approvers=[sb.groups["approvers"]],
            fields={"password": "SANDBOX-FIELD-VALUE-wiki"})
    return sb


def temp_db_path(directory: str) -> str:
    return os.path.join(directory, "ssrelay.db")
