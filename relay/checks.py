"""`ssrelay check`: each check returns one line, and on failure what to do about it.
Every sentence a new operator reads lives here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .config import Config
from .errors import (AccessDenied, AuthenticationFailed, ConfigError, SecretServerBadResponse,
                     SecretServerError, SecretServerUnavailable, SlackError)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        text = f"{mark} {self.name}: {self.detail}"
        if not self.ok and self.fix:
            text += f" -> {self.fix}"
        return text


def config_failed(exc: ConfigError) -> Check:
    return Check("config", False, str(exc), "fix that key in the config file or its SSRELAY_* variable")


def run_checks(cfg: Config) -> list[Check]:
    from .runtime import build_ss_client
    from .slack.api import SlackApi, make_client
    from .store import db as store

    out = [Check("config", True, f"loaded from {cfg.source}" if cfg.source else "loaded from the environment")]
    ss = build_ss_client(cfg, retry_seconds=3.0)   # an operator is waiting: fail fast
    reach = _guard("secret server reachable", lambda: _health(ss, cfg.secret_server.base_url),
                   "check secret_server.base_url and that this host can reach it (TLS: secret_server.verify_tls)")
    out.append(reach)
    login = Check("relay account login", False, "skipped: Secret Server is not reachable") if not reach.ok else _guard("relay account login", lambda: f"signed in as {ss.current_user().username}",
                   "check secret_server.username / password / domain; the account must be allowed to use the API")
    out.append(login)
    if login.ok:
        out.append(_guard("relay account can list access requests",
                          lambda: f"sees {len(ss.list_pending())} pending request(s)",
                          "give the account a role that may view access requests and add it to the approver "
                          "groups it should watch"))
    slack = SlackApi(make_client(cfg.slack.api_url, cfg.slack.bot_token.value))
    out.append(_guard("slack bot token", lambda: _auth_test(slack),
                      "copy the Bot User OAuth Token (xoxb-...) into SSRELAY_SLACK_BOT_TOKEN"))
    def database() -> str:
        db = store.open_db(cfg.storage.path)
        todo = store.pending(db)
        if todo:
            raise RuntimeError(f"migrations pending: {', '.join(todo)}")
        with db.atomic():
            db.execute("CREATE TABLE IF NOT EXISTS _check_probe (x)")
            db.execute("DROP TABLE _check_probe")
        return f"{cfg.storage.path} is writable and migrated"
    out.append(_guard("database", database, "run `ssrelay migrate`, and make storage.path writable"))
    return out


def _health(ss, base_url: str) -> str:
    if not ss.healthcheck():
        raise RuntimeError(f"{base_url} answered, but its health check does not say healthy")
    return f"{base_url} answers its health check"


def _auth_test(slack) -> str:
    data = slack.call("auth.test")
    return f"bot {data.get('user', '?')} in workspace {data.get('team', '?')}"


def _guard(name: str, fn: Callable[[], str], fix: str) -> Check:
    try:
        return Check(name, True, fn() or "ok")
    except AuthenticationFailed as exc:
        return Check(name, False, f"Secret Server refused the credentials ({exc})", fix)
    except AccessDenied as exc:
        return Check(name, False, f"access denied ({exc})", fix)
    except SecretServerUnavailable as exc:
        return Check(name, False, f"unreachable ({exc})", fix)
    except SecretServerBadResponse as exc:
        return Check(name, False, f"answered with something that is not its API ({exc})",
                     "secret_server.base_url must point at the Secret Server root, e.g. https://host/SecretServer")
    except SecretServerError as exc:
        return Check(name, False, str(exc), fix)
    except SlackError as exc:
        return Check(name, False, f"Slack said {exc.error}", fix)
    except Exception as exc:   # a check must report, never crash
        return Check(name, False, f"{type(exc).__name__}: {exc}", fix)
