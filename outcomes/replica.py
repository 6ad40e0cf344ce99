"""Dashboard reads from a read replica (issue 23), when ``DATABASE_REPLICA_URL`` is set.

Only the *reads of a dashboard view* go there: the view is wrapped in ``reads_from_replica``,
which marks the request's context, and ``DashboardReplicaRouter`` sends reads made while it is
marked to the ``replica`` alias. Everything else — the login and session checks that run before
the view, the audit row the view writes, every other page — stays on ``default``. A replica a
few seconds behind shows figures a few seconds old, which the dashboards (refreshed every 15
minutes) tolerate; no page that writes and then reads its own write is routed there.
"""

from collections.abc import Callable
from contextvars import ContextVar
from functools import wraps
from typing import Any

from django.conf import settings

REPLICA = "replica"
_dashboard_read: ContextVar[bool] = ContextVar("dashboard_read", default=False)


def reads_from_replica(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        token = _dashboard_read.set(True)
        try:
            return view(*args, **kwargs)
        finally:
            _dashboard_read.reset(token)

    return wrapped


class DashboardReplicaRouter:
    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        if _dashboard_read.get() and REPLICA in settings.DATABASES:
            return REPLICA
        return None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return True  # the replica holds the same rows as the primary

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db == REPLICA else None  # the replica follows the primary's schema
