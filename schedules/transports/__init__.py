"""Reminder channels, found by their module: adding SMS or Digital Post = one module in this
package exposing ``NAME`` and ``send(*, occurrence, kind)``; nothing else changes.

``send`` raises TransportError (or anything else) when the message did not go out; the caller
records the attempt with the error and retries on a later run."""

import importlib
import pkgutil
from functools import cache
from types import ModuleType

from django.conf import settings


class TransportError(Exception):
    """The channel could not deliver; the message says why, in words an operator can act on."""


@cache
def transports() -> dict[str, ModuleType]:
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(module, "NAME", None)
        if name and callable(getattr(module, "send", None)):
            found[name] = module
    return found


def transport_get(channel: str) -> ModuleType:
    try:
        return transports()[channel]
    except KeyError:
        raise LookupError(f"Unknown reminder channel {channel!r}; known: {sorted(transports())}") from None


def channels_enabled() -> list[str]:
    """The channels reminders go through. Only e-mail exists yet; the setting lets a deployment
    add SMS or Digital Post when their modules exist."""
    return list(getattr(settings, "SCHEDULE_REMINDER_CHANNELS", ["email"]))
