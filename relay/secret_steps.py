"""The steps of the secrets workflow (`relay.secrets.Secrets`): one small frozen type per kind,
each carrying exactly what that kind needs, for the Slack layer to render
(`relay.slack.secret_flows`). `kind` names each one for logs and tests."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from .model import AccessRequest, Launcher, Secret


class StepKind(StrEnum):
    RESULTS = "results"          # search: the secrets found (possibly none)
    SIGN_IN = "sign_in"          # no usable session: sign in first
    FAILED = "failed"            # SS could not be asked, or refused: `detail` says why
    NOTHING = "nothing"          # nothing launchable: the secret's page and `detail` (a plain reason)
    CHOOSE = "choose"            # several launchers: the person picks one
    PROMPT = "prompt"            # the launcher asks for a value (a host): ask in a modal
    LAUNCHED = "launched"        # SS started the launch: `url` opens it in a browser
    HANDOFF = "handoff"          # SS started the launch: `url` is for its launcher app on the person's computer
    FORM = "form"                # request access: show the form for `secret`
    INVALID = "invalid"          # the form needs fixing: `field_errors`
    CREATED = "created"          # the access request exists in SS: `request`
    NOT_NEEDED = "not_needed"    # the secret does not need approval: open it in SS


RESULTS, SIGN_IN, FAILED, NOTHING = StepKind.RESULTS, StepKind.SIGN_IN, StepKind.FAILED, StepKind.NOTHING
CHOOSE, PROMPT, LAUNCHED, HANDOFF = StepKind.CHOOSE, StepKind.PROMPT, StepKind.LAUNCHED, StepKind.HANDOFF
FORM, INVALID, CREATED, NOT_NEEDED = StepKind.FORM, StepKind.INVALID, StepKind.CREATED, StepKind.NOT_NEEDED


@dataclass(frozen=True)
class Results:
    kind: ClassVar[StepKind] = RESULTS
    secrets: tuple[Secret, ...]


@dataclass(frozen=True)
class SignIn:
    kind: ClassVar[StepKind] = SIGN_IN
    secret_id: int | None = None       # the secret a Launch was for, to offer it again after


@dataclass(frozen=True)
class Failed:
    kind: ClassVar[StepKind] = FAILED
    detail: str
    secret_id: int | None = None
    secret: Secret | None = None
    launcher: Launcher | None = None


@dataclass(frozen=True)
class Nothing:
    kind: ClassVar[StepKind] = NOTHING
    secret: Secret
    detail: str
    launcher: Launcher | None = None


@dataclass(frozen=True)
class Choose:
    kind: ClassVar[StepKind] = CHOOSE
    secret: Secret
    launchers: tuple[Launcher, ...]


@dataclass(frozen=True)
class Prompt:
    kind: ClassVar[StepKind] = PROMPT
    secret: Secret
    launcher: Launcher


@dataclass(frozen=True)
class PromptInvalid:
    kind: ClassVar[StepKind] = INVALID
    secret: Secret
    launcher: Launcher
    error: str                         # why the value given was refused (shown on the field)


@dataclass(frozen=True)
class Launched:
    kind: ClassVar[StepKind] = LAUNCHED
    secret: Secret
    launcher: Launcher
    url: str


@dataclass(frozen=True)
class Handoff:
    kind: ClassVar[StepKind] = HANDOFF
    secret: Secret
    launcher: Launcher
    url: str


@dataclass(frozen=True)
class Form:
    kind: ClassVar[StepKind] = FORM
    secret: Secret


@dataclass(frozen=True)
class NotNeeded:
    kind: ClassVar[StepKind] = NOT_NEEDED
    secret: Secret


@dataclass(frozen=True)
class FormInvalid:
    kind: ClassVar[StepKind] = INVALID
    secret_id: int
    field_errors: dict[str, str]
    needs_ticket: bool = False


@dataclass(frozen=True)
class Created:
    kind: ClassVar[StepKind] = CREATED
    secret_id: int
    request: AccessRequest


Step = (Results | SignIn | Failed | Nothing | Choose | Prompt | PromptInvalid | Launched | Handoff | Form
        | NotNeeded | FormInvalid | Created)
