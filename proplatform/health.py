"""GET /health/: is every part this deployment needs up? 200 only when all of them are."""

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from proplatform import channel_sends
from proplatform.celery import app as celery_app


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _broker() -> str:
    if settings.EMBEDDED:
        return "ok (embedded: tasks run in-process)"
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


def _channel_layer() -> str:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")

    async def round_trip() -> None:
        channel = await layer.new_channel()
        marker = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.check", "marker": marker})
        message = await asyncio.wait_for(layer.receive(channel), timeout=2)
        if message.get("marker") != marker:
            raise RuntimeError("channel layer returned another message")

    # On the process's sending loop: under the web server's threads each async_to_sync would start a
    # loop of its own, and the Redis layer refuses receive() from two loops at once.
    channel_sends.run(layer, round_trip)
    return "ok"


def _worker() -> str:
    if settings.EMBEDDED:
        return "ok (embedded: tasks run in-process)"
    replies = celery_app.control.ping(timeout=1.5)
    if not replies:
        raise RuntimeError("no Celery worker answered a ping")
    return f"ok ({len(replies)} answering)"


CHECKS: dict[str, Callable[[], str]] = {
    "database": _database,
    "broker": _broker,
    "channel_layer": _channel_layer,
    "worker": _worker,
}


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    results: dict[str, Any] = {}
    healthy = True
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            status = check()
            ok = True
        except Exception as exc:  # a health check reports failures, it does not raise them
            status, ok = f"{type(exc).__name__}: {exc}", False
        healthy &= ok
        results[name] = {"ok": ok, "status": status,
                         "ms": round((time.monotonic() - started) * 1000, 1)}
    body = {"status": "ok" if healthy else "unavailable",
            "mode": "embedded" if settings.EMBEDDED else "production", "checks": results}
    return JsonResponse(body, status=200 if healthy else 503)
