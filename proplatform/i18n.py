"""Text the platform stores for others to read is written in the site's language."""

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.utils import translation

P = ParamSpec("P")
R = TypeVar("R")


def in_site_language(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` in settings.LANGUAGE_CODE, whatever language the current thread has.

    Alert reasons are stored text a nurse reads. In the embedded shape the evaluation task runs
    in-process, inside the request of whoever sent the reading or the answer: without this, a
    patient with an English phone would leave an English reason on a Danish worklist. (A worker
    process is in LANGUAGE_CODE anyway.) The rule functions below the task follow the active
    language, which the rule tests use to check their English wording."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with translation.override(settings.LANGUAGE_CODE):
            return function(*args, **kwargs)

    return wrapper
