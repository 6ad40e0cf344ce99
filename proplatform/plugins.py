"""Registries found by module: a package whose modules each expose ``NAME`` and a ``send``
function (schedules/transports/ for reminders, alerts/transports/ for alert notices). Adding a
channel is adding a module; nothing else changes."""

import importlib
import pkgutil
from collections.abc import Iterable
from types import ModuleType


def modules_by_name(package: str, path: Iterable[str]) -> dict[str, ModuleType]:
    """The package's modules that expose a ``NAME`` and a callable ``send``, by that name."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(path):
        module = importlib.import_module(f"{package}.{info.name}")
        name = getattr(module, "NAME", None)
        if name and callable(getattr(module, "send", None)):
            found[name] = module
    return found


def module_get(registry: dict[str, ModuleType], name: str, what: str) -> ModuleType:
    try:
        return registry[name]
    except KeyError:
        raise LookupError(f"Unknown {what} {name!r}; known: {sorted(registry)}") from None
