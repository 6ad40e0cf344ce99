"""GET /health/, the HTTPS-only defaults, and settings that refuse malformed environments."""

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from proplatform import health as health_module

ROOT = Path(__file__).resolve().parent.parent
CHECKS = {"database", "broker", "channel_layer", "worker"}
SETUP = 'import django, os; os.environ["DJANGO_SETTINGS_MODULE"]="proplatform.settings"; django.setup()'


def _env(**overrides: str) -> dict[str, str]:
    """The current environment without anything that picks a shape, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "HTTPS_ONLY", "SECRET_KEY", "ALLOWED_HOSTS",
                        "DJANGO_SETTINGS_MODULE", "BEHIND_TLS_PROXY", "NUM_PROXIES"}}
    env.update(overrides)
    return env


def _setup(**overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SETUP], env=_env(**overrides), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


# --- /health/ --------------------------------------------------------------------------------

@pytest.mark.skipif(not django_settings.EMBEDDED,
                    reason="embedded shape only; the production shape has no Celery worker in unit tests")
def test_health_is_200_json_with_every_check_ok_in_the_embedded_shape(db, client):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok"
    assert body["mode"] == "embedded"
    assert set(body["checks"]) == CHECKS
    for name, check in body["checks"].items():
        assert check["ok"] is True, name
        assert check["status"].startswith("ok"), name
        assert isinstance(check["ms"], (int, float))
    assert "embedded" in body["checks"]["broker"]["status"]
    assert "embedded" in body["checks"]["worker"]["status"]


@pytest.mark.skipif(django_settings.EMBEDDED, reason="production shape only (REDIS_URL set)")
def test_health_checks_the_real_database_broker_and_channel_layer_in_the_production_shape(db, client):
    response = client.get("/health/")
    body = response.json()
    assert body["mode"] == "production"
    assert set(body["checks"]) == CHECKS
    for name in ("database", "broker", "channel_layer"):
        assert body["checks"][name] == {**body["checks"][name], "ok": True, "status": "ok"}, name
    # No worker runs in unit tests: the answer depends on it, and is never a false "ok".
    worker = body["checks"]["worker"]
    assert response.status_code == (200 if worker["ok"] else 503)


def test_health_is_503_naming_the_check_that_failed(db, client, monkeypatch):
    def broken() -> str:
        raise ConnectionError("broker unreachable")

    monkeypatch.setitem(health_module.CHECKS, "broker", broken)
    monkeypatch.setitem(health_module.CHECKS, "worker", lambda: "ok")
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["status"] == "ConnectionError: broker unreachable"
    assert body["checks"]["database"]["ok"] is True


def test_health_is_never_cached(db, client):
    assert "no-cache" in client.get("/health/")["Cache-Control"]


def test_health_answers_plain_http_while_other_pages_redirect_to_https(db, client, settings):
    settings.SECURE_SSL_REDIRECT = True  # the default outside DEBUG, made explicit
    assert client.get("/health/").status_code != 301
    response = client.get("/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/login/"


# --- settings ----------------------------------------------------------------------------------

def test_settings_default_to_https_only_outside_debug():
    # The unit tests run with no DEBUG and no HTTPS_ONLY: the safe production defaults.
    assert django_settings.DEBUG is False
    assert django_settings.SESSION_COOKIE_SECURE is True
    assert django_settings.CSRF_COOKIE_SECURE is True
    assert django_settings.SECURE_HSTS_SECONDS >= 31536000


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://x/y"),
        ("DATABASE_URL", "postgres:///no-host"),
        ("REDIS_URL", "http://x"),
        ("DEBUG", "maybe"),
        ("HTTPS_ONLY", "sometimes"),
        ("BEHIND_TLS_PROXY", "perhaps"),
        ("LIVE_FEED_PORT", "ws://x:8100"),
        ("LIVE_FEED_PORT", "70000"),
    ],
)
def test_malformed_environment_stops_start_up_with_improperly_configured(variable, value):
    result = _setup(**{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


def test_well_formed_production_environment_starts():
    result = _setup(DATABASE_URL="postgres://u:p@db.example.org:5432/pro",
                    REDIS_URL="redis://cache.example.org:6379/0", DEBUG="0", HTTPS_ONLY="1")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("Yes", True),
                                                 ("0", False), ("false", False), ("off", False)])
def test_usual_boolean_spellings_are_understood(value, expected):
    code = SETUP + "; from django.conf import settings; print(settings.DEBUG)"
    result = subprocess.run([sys.executable, "-c", code], env=_env(DEBUG=value), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(expected)


def test_deploy_check_passes_with_a_production_environment():
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    env = _env(DEBUG="0", SECRET_KEY="".join(secrets.choice(alphabet) for _ in range(60)),
               ALLOWED_HOSTS="example.org", HTTPS_ONLY="1")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_check_flags_the_embedded_default_secret_key():
    env = _env(DEBUG="0", ALLOWED_HOSTS="example.org", HTTPS_ONLY="1")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


# --- the middleware chain under ASGI ---------------------------------------------------------

def test_under_asgi_the_middleware_chain_runs_without_a_thread_hop_per_middleware():
    """With a sync-only middleware innermost, Django runs the built-in middleware synchronously
    under ASGI too; in async mode each of them would hop to a thread for process_request and
    process_response (most of a small request's CPU, bench/reading_concurrency.py)."""
    from unittest.mock import patch

    from asgiref.sync import async_to_sync, sync_to_async
    from django.test import AsyncClient

    with patch("django.utils.deprecation.sync_to_async", wraps=sync_to_async) as hop:
        response = async_to_sync(AsyncClient().get)("/login/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert hop.call_count == 0


# --- database connections in Celery workers -------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_a_good_database_connection_between_tasks_and_drops_a_broken_one(monkeypatch):
    """Celery's Django fixup reconnected before and after every task (a PostgreSQL backend
    forked per task); CELERY_DB_REUSE_MAX turns that off, and our task hooks close only a
    broken or expired connection, as Django does around a request."""
    from types import SimpleNamespace

    from celery.fixups.django import DjangoWorkerFixup
    from django.db import connections

    from proplatform.celery import _close_unusable_connections, app

    conn = connections["default"]
    monkeypatch.setitem(conn.settings_dict, "CONN_MAX_AGE", 300)
    conn.close()
    conn.ensure_connection()
    kept = conn.connection
    task = SimpleNamespace(request=SimpleNamespace(is_eager=False))

    DjangoWorkerFixup(app).close_database()  # what the fixup runs before and after each task
    _close_unusable_connections(task=task)
    assert conn.connection is kept

    conn.errors_occurred = True
    monkeypatch.setattr(conn, "is_usable", lambda: False)
    _close_unusable_connections(task=task)
    assert conn.connection is None


def test_the_channel_layer_check_holds_when_threads_run_it_at_once():
    # gunicorn's threads: each async_to_sync starts its own event loop in its thread
    from concurrent.futures import ThreadPoolExecutor

    from proplatform.health import _channel_layer

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _channel_layer(), range(8)))
    assert results == ["ok"] * 8
