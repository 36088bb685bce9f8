"""Building the relay's parts from a Config: the Secret Server clients and the Slack side
(clicks, the Home tab, sign-in, Socket Mode), each part given only what it uses."""

from __future__ import annotations

import threading
from collections.abc import Callable
from zoneinfo import ZoneInfo

from .actions import Actions
from .config import Config
from .secrets import Secrets
from .sessions import Sessions
from .slack import payloads
from .slack.answers import Answers
from .slack.api import SlackApi
from .slack.app import Interactions, SocketMode, build_app
from .slack.clicks import ClickController
from .slack.endpoint import SlackEndpoint
from .slack.home_publisher import HomeLook, HomePublisher
from .slack.outcomes import OutcomeRenderer
from .slack.people import SignInLink, SlackPeople
from .slack.secret_flows import SecretFlows, SlackSide
from .slack.workers import WorkerPool
from .ss.client import RelayCredentials, SecretServerClient
from .store.home_read import HomeReadModel
from .store.local import ThreadLocalDb
from .store.seen import SeenDeliveries
from .web.signin import SignInPages

POLL_RETRY_SECONDS = 30.0     # a poll may wait out a short SS hiccup before it is abandoned
PEOPLE_RETRY_SECONDS = 5.0    # a person clicking or searching should hear back quickly


def build_ss_client(cfg: Config, *, retry_seconds: float = POLL_RETRY_SECONDS) -> SecretServerClient:
    s = cfg.secret_server
    return SecretServerClient(
        s.base_url, credentials=RelayCredentials(s.username, s.password.value, s.domain),
        timeout=float(s.timeout_seconds), verify=s.verify_tls, tz=ZoneInfo(s.timezone),
        retry_seconds=retry_seconds, auth=s.auth)


def build_interactions(cfg: Config, db: ThreadLocalDb, slack: SlackApi, people_ss: SecretServerClient,
                       sessions: Sessions, secrets: Secrets, *, stop: threading.Event,
                       wake_delivery: Callable[[], None]) -> Interactions:
    """The Slack side: each part gets only the parts and settings it uses."""
    workers = WorkerPool()
    read = HomeReadModel(db)
    people = SlackPeople(slack, sessions, read, match_by_email=cfg.users.match_by_email,
                         email_cache_hours=cfg.users.email_cache_hours)
    signin_url = SignInLink(cfg.http.public_url)
    home = HomePublisher(read, people, sessions, secrets, slack, signin_url=signin_url, submit=workers.submit,
                         stop=stop, look=HomeLook(secret_url=cfg.secret_url, request_url=cfg.request_url,
                                                  more_url=cfg.secret_server.base_url,
                                                  default_hours=cfg.approvals.default_duration_hours))
    answers = Answers(slack, api_url=cfg.slack.api_url)
    renderer = OutcomeRenderer(db, slack, answers, home, signin_url=signin_url, secret_url=cfg.secret_url,
                               default_hours=cfg.approvals.default_duration_hours, wake_delivery=wake_delivery)
    flows = SecretFlows(secrets, sessions, slack, cfg.secret_url,
                        SlackSide(team=people.team, team_of=payloads.team_of, signin_url=signin_url,
                                  submit=workers.submit, submit_fast=workers.submit_fast, dm=answers.dm))
    actions = Actions(db, sessions, default_hours=cfg.approvals.default_duration_hours)
    clicks = ClickController(db, actions, sessions, secrets, flows, renderer, home, workers, slack,
                             api_url=cfg.slack.api_url, ask_reason=cfg.approvals.ask_reason,
                             sensitive_folders=tuple(cfg.approvals.sensitive_folders))
    seen = SeenDeliveries(db)
    app = build_app(cfg.slack, clicks, seen, flows)
    signin = SignInPages(sessions, people_ss, clicks.on_signed_in, slack_name=people.display_name)
    socket = SocketMode(app, cfg.slack.app_token.value) if cfg.slack.mode == "socket" else None
    return Interactions(sessions=sessions, secrets=secrets, signin=signin, home=home, workers=workers,
                        seen=seen, clicks=clicks, endpoint=SlackEndpoint(app, cfg.slack.signing_secret.value),
                        socket=socket)
