"""What a rule kind's parameters look like to the person setting up a programme (issue 24).

Each kind module declares ``FORM``: a tuple of the fields below, in page order, each naming the
path of the parameter it fills (``"bands.alert_low"`` for nested parameters). The editor builds
one typed Django form per kind from it (``alerts.rule_forms``): labels, units beside the fields,
allowed ranges, help with a clinical example, pickers limited to what the programme provides. The
kind's pydantic ``Params`` stays the one validator of the stored JSON; the spec only says how a
person fills it in, so nobody types JSON.

Plain data, no Django forms here: a kind module stays importable by the evaluator without them.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django_stubs_ext import StrOrPromise


@dataclass(frozen=True)
class Number:
    path: str
    label: StrOrPromise
    help: StrOrPromise = ""
    required: bool = False
    # A fixed unit ("timer"), or None: the unit of the measure picked in the same form.
    unit: StrOrPromise | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    whole: bool = False  # an integer parameter
    # ``as_hours``: the parameter is a duration (pydantic timedelta) given in hours.
    as_hours: bool = False
    initial: Any = None


@dataclass(frozen=True)
class Choice:
    path: str
    label: StrOrPromise
    choices: tuple[tuple[str, StrOrPromise], ...]
    help: StrOrPromise = ""
    initial: str | None = None
    required: bool = True


@dataclass(frozen=True)
class MeasurePick:
    """One of the programme's measures (devices), never free text."""

    path: str
    label: StrOrPromise
    help: StrOrPromise = ""


@dataclass(frozen=True)
class QuestionnairePick:
    """One of the programme's questionnaires (canonical URL); optional ones may mean "any"."""

    path: str
    label: StrOrPromise
    help: StrOrPromise = ""
    required: bool = True


@dataclass(frozen=True)
class ItemPick:
    """A question of the programme's questionnaires: fills ``questionnaire`` and ``link_id``."""

    questionnaire_path: str
    link_path: str
    label: StrOrPromise
    help: StrOrPromise = ""

    @property
    def path(self) -> str:
        return self.link_path


@dataclass(frozen=True)
class AnswerPick:
    """Answers (option codes) of the question picked by the form's ItemPick."""

    path: str
    label: StrOrPromise
    help: StrOrPromise = ""
    required: bool = True


@dataclass(frozen=True)
class ItemsPick:
    """Several questions (linkIds) of the questionnaire picked by the form's QuestionnairePick."""

    path: str
    label: StrOrPromise
    help: StrOrPromise = ""


@dataclass(frozen=True)
class Ascending:
    """Cross-field check: the given numbers, in this order, must rise (inverted limits)."""

    paths: tuple[str, ...]
    message: StrOrPromise


@dataclass(frozen=True)
class OneOf:
    """Cross-field check: exactly one (``exactly``) or at least one of these must be given."""

    paths: tuple[str, ...]
    message: StrOrPromise
    exactly: bool = False


Field = Number | Choice | MeasurePick | QuestionnairePick | ItemPick | AnswerPick | ItemsPick
Check = Ascending | OneOf
