"""Reminder channels, found by their module: adding SMS or Digital Post = one module in this
package exposing ``NAME`` and ``send(*, occurrence, kind)``; nothing else changes.

``send`` raises TransportError (or anything else) when the message did not go out; the caller
records the attempt with the error and retries on a later run."""

from functools import cache
from types import ModuleType

from django.conf import settings

from proplatform.plugins import module_get, modules_by_name


class TransportError(Exception):
    """The channel could not deliver; the message says why, in words an operator can act on."""


@cache
def transports() -> dict[str, ModuleType]:
    return modules_by_name(__name__, __path__)


def transport_get(channel: str) -> ModuleType:
    return module_get(transports(), channel, "reminder channel")


def channels_enabled() -> list[str]:
    """The channels reminders go through. Only e-mail exists yet; the setting lets a deployment
    add SMS or Digital Post when their modules exist."""
    return list(getattr(settings, "SCHEDULE_REMINDER_CHANNELS", ["email"]))
