"""Settings, read from the environment.

With no environment at all this is the *embedded* shape: SQLite, Celery tasks run in-process
(``task_always_eager``), an in-memory channel layer and e-mail to the console. Setting
``DATABASE_URL`` and ``REDIS_URL`` switches on the *production* shape (PostgreSQL, Redis as Celery
broker, Channels layer and cache). Both shapes run the same code paths: views enqueue the same
Celery tasks after commit and tasks push over the same channel-layer API.

A malformed value stops start-up with ImproperlyConfigured rather than falling back silently.
See docs/production.md for every variable.
"""

import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import django_stubs_ext
import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

# Lets the generic classes of django-stubs be subscripted at runtime (admin.ModelAdmin[Patient]),
# as mypy wants them written (pyproject.toml [tool.mypy]).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _url(name: str, schemes: set[str]) -> str | None:
    """Return the URL in ``name`` after checking its scheme and host; None when unset."""
    raw = env.str(name, default="").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name} must start with one of {sorted(schemes)}; got scheme {parts.scheme!r}"
        )
    if parts.scheme not in {"sqlite"} and not parts.hostname:
        raise ImproperlyConfigured(f"{name} has no host name")
    return raw


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(name: str, default: bool) -> bool:
    """A yes/no variable; anything but the usual spellings is an error, not False."""
    raw = env.str(name, default="").strip().lower()
    if not raw:
        return default
    if raw in _TRUE | _FALSE:
        return raw in _TRUE
    raise ImproperlyConfigured(f"{name} must be one of {sorted(_TRUE | _FALSE)}; got {raw!r}")


DEBUG = _bool("DEBUG", default=False)
# Cookies marked Secure, HSTS and the HTTPS redirect. On by default outside DEBUG so that a
# production deployment that forgets the variable is safe; the demo and the test servers,
# which speak plain HTTP on 127.0.0.1, turn it off explicitly.
HTTPS_ONLY = _bool("HTTPS_ONLY", default=not DEBUG)
# Behind a TLS-terminating reverse proxy: trust its X-Forwarded-Proto, and take the client
# address from the last X-Forwarded-For entry (the one the proxy wrote).
BEHIND_TLS_PROXY = _bool("BEHIND_TLS_PROXY", default=False)

SECRET_KEY = env.str(
    "SECRET_KEY",
    # The "django-insecure-" prefix makes `check --deploy` flag a deployment that forgot it.
    default="django-insecure-embedded-default-never-use-in-production",
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # daphne first: its runserver serves HTTP and websockets from one process.
    "daphne",
    "proplatform.admin_site.ProplatformAdminConfig",  # django.contrib.admin with a 403 for non-admins
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",  # failed-login lockout (accounts.lockout); its admin lists and removes locks
    "channels",
    "csp",
    "accounts",
    "audit",
    "smart",  # SMART Backend Services: system clients and their tokens (ADR 0018)
    "patients",
    "questionnaires",
    "monitoring",
    "alerts",
    "interop",
    "outcomes",
    "schedules",
    "exports",
    "editor",
    "clinic",  # pages that compose several apps (docs/architecture.md, "Layers")
]

MIDDLEWARE = [
    "proplatform.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Idle timeout and "staff must pass two-factor login"; it returns at once for requests
    # without a session cookie (devices, bearer tokens), so the readings path pays nothing.
    "accounts.middleware.SessionSecurityMiddleware",
    "proplatform.middleware.NoStoreMiddleware",  # after the session's user is known
    "csp.middleware.CSPMiddleware",
    "proplatform.middleware.AdminStyleCSPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "proplatform.middleware.SynchronousChainMiddleware",  # keep last: see its docstring
]

ROOT_URLCONF = env.str("ROOT_URLCONF", default="proplatform.urls")  # benchmarks add a no-op view
ASGI_APPLICATION = "proplatform.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "csp.context_processors.nonce",
            ],
            # {{ svg|nonced:request }}: the request's CSP nonce on an inline SVG's <style>.
            "libraries": {"nonced": "proplatform.templatetags_nonced"},
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASE_URL = _url("DATABASE_URL", {"postgres", "postgresql", "sqlite"})
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
else:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}
    }
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # psycopg prepares nothing unless this is set. Only the hot paths' statements run with
    # execute(..., prepare=True) (proplatform.db.prepared_cursor) are prepared; no other statement
    # is run this many times (Django's own cursors bind on the client anyway).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 2**62)
# Web (granian) and ws (uvicorn) processes borrow connections from a pool instead of opening a PostgreSQL connection
# per request and per websocket push (Django closes them after each). Set for the web process
# only (Procfile): a Celery prefork worker must not inherit a pool's threads across fork; it keeps
# one connection instead (WORKER_DB_CONN_MAX_AGE). 0 = no pool.
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=0)
if DB_POOL_MAX_SIZE and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": DB_POOL_MAX_SIZE, "timeout": 10}
# An evaluation task also claims other readings received this many seconds back that still wait
# for their own task (alerts.services._claim_readings): a burst becomes one batch. 0 turns it off.
ALERTS_COALESCE_SECONDS = env.int("ALERTS_COALESCE_SECONDS", default=60)
# With a broker, ingest sends an evaluation task only when none waits in the queue (ADR 0011);
# if that task is lost, the mark that one waits expires after this many seconds. 0: a task per
# batch, always.
EVALUATION_QUEUED_SECONDS = env.int("EVALUATION_QUEUED_SECONDS", default=10)
# With a broker, a web process hands its evaluation requests to one thread that sends them
# (alerts.evaluation.sender, ADR 0016): at most one send per this many milliseconds, with
# every batch handed over meanwhile. A batch alone goes at once. 0: it sends whenever it can
# (batches handed over during a send still go together in the next).
EVALUATION_SEND_INTERVAL_MS = env.int("EVALUATION_SEND_INTERVAL_MS", default=25)
# A device's single reading is stored and answered before Django's request cycle
# (monitoring.device_fast_path, ADR 0016). Off: Django answers every request.
READINGS_FAST_PATH = _bool("READINGS_FAST_PATH", default=True)
# After an evaluation task claimed a large backlog (a bulk upload), the worker process waits until
# this many milliseconds have passed since that claim before its next claim, so the upload is
# evaluated in a few large claims instead of many small ones (ADR 0013). 0 turns it off.
EVALUATION_GATHER_MS = env.int("EVALUATION_GATHER_MS", default=150)
# Seconds a Celery worker process keeps its database connection between tasks (proplatform.celery).
WORKER_DB_CONN_MAX_AGE = env.int("WORKER_DB_CONN_MAX_AGE", default=300)
# Celery's Django fixup closes the database connection before and after every task unless this
# is set; then only every 2 x this many tasks. proplatform.celery closes broken and expired
# connections itself, so the fixup's reconnect per task (a PostgreSQL backend forked per task,
# measured at 100 readings/s) is turned off.
CELERY_DB_REUSE_MAX = 1_000_000
# Test databases carry the process id, so two test runs on one machine do not collide.
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
# SQLite test databases live in a file so that the ASGI server and Celery worker that the
# end-to-end tests start as separate processes see the same data as the test.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"proplatform-test-{os.getpid()}.sqlite3")
    }
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # A transaction that reads, then writes (the ingest's repeat check, then its insert) would
    # otherwise get "database is locked" at once when another one wrote meanwhile: SQLite cannot
    # wait there without risking a deadlock. Taking the write lock at BEGIN makes it wait
    # (up to the timeout) instead. The embedded shape only; PostgreSQL has row locks.
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker, Channels layer, cache ----------------------------------------------
REDIS_URL = _url("REDIS_URL", {"redis", "rediss"})
# Prefix of every Redis key (broker queues, channel groups, cache), so that several deployments
# or test runs can share one Redis without seeing each other's messages.
REDIS_PREFIX = env.str("REDIS_PREFIX", default="proplatform")
EMBEDDED = REDIS_URL is None

CELERY_TASK_ALWAYS_EAGER = EMBEDDED
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task is acknowledged only after it finished, and re-queued if its worker dies: with the
# claim-before-acting services this gives at-least-once delivery without duplicates.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("WORKER_PREFETCH_MULTIPLIER", default=1)
CELERY_TASK_DEFAULT_QUEUE = "proplatform"
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600, "global_keyprefix": f"{REDIS_PREFIX}:"}
CELERY_TIMEZONE = "UTC"
# Outcome indicators (issue 23): how often beat rebuilds the precomputed cells, and how long a
# page's suppressed figures summed from one refresh are kept (a refresh makes a new key, so this
# only bounds memory; 0 turns the keeping off). ADR 0021.
OUTCOMES_REFRESH_SECONDS = env.float("OUTCOMES_REFRESH_SECONDS", default=900.0)
OUTCOMES_VIEW_CACHE_SECONDS = env.int("OUTCOMES_VIEW_CACHE_SECONDS", default=int(2 * OUTCOMES_REFRESH_SECONDS))
CELERY_BEAT_SCHEDULE = {
    # Outcome indicators (issue 23): rebuild the precomputed aggregates the dashboards read.
    # A withdrawal from secondary use leaves these figures at the next refresh at the latest.
    "outcomes-refresh-indicator-cells": {
        "task": "outcomes.tasks.refresh_indicator_cells",
        "schedule": OUTCOMES_REFRESH_SECONDS,
    },
    # The broker is a hint, the database the record: whatever the evaluation inbox holds that no
    # task claimed (a lost message, a killed worker) is found here, and so are misses whose grace
    # period has passed (alerts.evaluation.services.pending_sweep, ADR 0020).
    "alerts-evaluation-sweep": {
        "task": "alerts.evaluation.sweep",
        "schedule": env.float("SWEEP_INTERVAL_SECONDS", default=60.0),
    },
    # Questionnaire schedules (schedules.services). Each run is idempotent and catches up on
    # whatever an earlier run missed, so a lost beat tick only delays, never loses, a change.
    "schedules-advance-occurrences": {
        "task": "schedules.tasks.advance_occurrences",
        "schedule": 180.0,  # open/missed within three minutes of the window's edge
    },
    "schedules-send-reminders": {
        "task": "schedules.tasks.send_reminders",
        "schedule": 900.0,
    },
    # Bulk $export (exports.services.exports_sweep): fails jobs whose worker stopped beating,
    # re-queues jobs the broker lost, deletes files past their expiry.
    # Expired sessions and old person tokens (accounts.retention; docs/operations.md).
    "accounts-clear-expired": {
        "task": "accounts.tasks.clear_expired",
        "schedule": 3600.0,
    },
    # Used assertion ids past their expiry and expired system tokens (smart.services).
    "smart-clear-expired": {
        "task": "smart.tasks.clear_expired",
        "schedule": 3600.0,
    },
    "exports-sweep": {
        "task": "exports.tasks.sweep_exports",
        "schedule": 60.0,
    },
    # Escalation of unacknowledged red alerts and retries of failed notifications
    # (alerts.escalation): driven by database state, so each run finds whatever step is due.
    "alerts-escalate": {
        "task": "alerts.tasks_escalation.escalate_alerts",
        "schedule": 60.0,
    },
    # Overdue reviews of responses climb the same ladder (alerts.review_escalation). Due times
    # are the end of a working day, so every 5 minutes is close enough.
    "escalate-overdue-reviews": {
        "task": "alerts.tasks_escalation.escalate_reviews",
        "schedule": 300.0,
    },
    "schedules-generate-occurrences": {
        # Daily for new episodes and new schedules; a new episode can also fire
        # schedules.tasks.generate_occurrences_for_episode on commit.
        "task": "schedules.tasks.generate_occurrences",
        "schedule": 24 * 3600.0,
    },
}

# Celery autodiscovery imports only ``tasks`` modules; the escalation job lives beside them.
CELERY_IMPORTS = ["alerts.tasks_escalation"]
# Escalation notices (alerts.escalation): the absolute base of the triage link in e-mails, and
# how often (and how far apart) a failed notification is tried. A team without an
# EscalationPolicy does not escalate; there is no default policy.
ALERT_LINK_BASE_URL = env.str("ALERT_LINK_BASE_URL", default="http://localhost:8000")
# The triage page's live feed is at /ws/alerts/ on the page's own host: a proxy routes /ws/ to
# the ws process (ADR 0012). Without a proxy (bin/production-local) the page connects to this
# port of the same host name instead. Empty: the page's own port.
LIVE_FEED_PORT = env.str("LIVE_FEED_PORT", default="")
# Every live-feed socket gets a heartbeat message this often: an idle page can tell a quiet feed
# from a dead one, and proxies that close idle connections (nginx: 60 s) see traffic.
LIVE_HEARTBEAT_SECONDS = env.float("LIVE_HEARTBEAT_SECONDS", default=20.0)
if LIVE_FEED_PORT and not (LIVE_FEED_PORT.isdigit() and 0 < int(LIVE_FEED_PORT) < 65536):
    raise ImproperlyConfigured(f"LIVE_FEED_PORT must be a TCP port number, not {LIVE_FEED_PORT!r}")
ALERT_NOTIFY_MAX_ATTEMPTS = env.int("ALERT_NOTIFY_MAX_ATTEMPTS", default=3)
ALERT_NOTIFY_RETRY_SECONDS = env.int("ALERT_NOTIFY_RETRY_SECONDS", default=60)

if EMBEDDED:
    CHANNEL_LAYERS: dict[str, dict[str, Any]] = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES: dict[str, dict[str, Any]] = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    CHANNEL_LAYER_SOCKET_TIMEOUT = env.float("CHANNEL_LAYER_SOCKET_TIMEOUT", default=20.0)
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # channels_redis waits for a message with a blocking pop of 5 s (``brpop_timeout``);
            # redis-py's default socket timeout is also 5 s, so an idle receive() raised
            # TimeoutError and the live feed's consumer died every ~5 s. The socket timeout must
            # stay above the blocking pop; it still bounds a dead Redis (the page reconnects).
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT,
                                  "socket_connect_timeout": 5}],
                       "prefix": f"{REDIS_PREFIX}:ch"},
        }
    }
    # Shared by every web process, so login throttling counts across them.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_PREFIX,
        }
    }

# --- Auth ---------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes' backend comes first: it refuses a locked-out username before any password is checked,
# on every path that calls authenticate() (the login page, which /admin/ uses, and the token
# endpoint). Device tokens (dv_…) never call authenticate(), so the readings path is untouched.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# A care team keeps read access to a patient this many days after the treatment episode ended
# (patients.access); then only administrators see the record.
CARE_ACCESS_GRACE_DAYS = env.int("CARE_ACCESS_GRACE_DAYS", default=90)
API_TOKEN_LIFETIME_HOURS = env.int("API_TOKEN_LIFETIME_HOURS", default=12)
# Expired and revoked person tokens are kept this long (a token in a log can be traced to its
# owner), then deleted by beat (accounts.retention).
TOKEN_RETENTION_DAYS = env.int("TOKEN_RETENTION_DAYS", default=30)
# Two-factor login (TOTP) for every staff role (clinician, quality, admin): until a staff
# session has passed it, every page sends the user to /account/two-factor/ and the API answers
# 403 (accounts.middleware). On by default in the production shape; off in the demo (DEBUG or
# embedded), where REQUIRE_STAFF_TWO_FACTOR=1 turns it on.
REQUIRE_STAFF_TWO_FACTOR = _bool("REQUIRE_STAFF_TWO_FACTOR", default=not (DEBUG or EMBEDDED))
# A session unused for this long ends (accounts.middleware); SESSION_COOKIE_AGE stays the
# absolute limit.
SESSION_IDLE_TIMEOUT_SECONDS = env.int("SESSION_IDLE_TIMEOUT_SECONDS", default=30 * 60)

# --- Failed-login lockout (django-axes, accounts.lockout) ---------------------------------------
# Counted per username over all addresses: 54 guesses from 6 addresses lock the account like 54
# from one. Not per address alone: a hospital's staff share a few NAT addresses, and someone
# guessing other accounts from one of them must not lock out everybody else behind it (the
# token endpoint's per-address throttle above still slows a sweep over many accounts).
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
# The lock lifts by itself this long after the failure that set it (or an admin lifts it:
# docs/production.md). Failures while locked do not extend it: a user trying again during the
# lock would otherwise keep themselves locked out.
LOGIN_COOLOFF_MINUTES = env.int("LOGIN_COOLOFF_MINUTES", default=15)
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True  # a successful login clears the user's earlier failures
# Logins are audited in audit.AuditEvent (accounts.services.login_audit); axes' own log of
# successful logins would be a second, deletable trail.
AXES_DISABLE_ACCESS_LOG = True
# The same client address as the audit and the throttles (last X-Forwarded-For entry behind our
# proxy only), so a forged header cannot pick the address.
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.axes_client_ip"
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token"]  # masked in axes' stored request data
# W002: the views answer a lockout themselves (the login page in Danish, the API with 429 JSON),
# so axes' middleware, which would run on every request, is not installed.
# W006 warns that without "ip_address" a lock could be dodged by rotating User-Agents: that holds
# for locks on a combination with the User-Agent; ours sums every failure of the username, from
# any address and any User-Agent.
SILENCED_SYSTEM_CHECKS = ["axes.W002", "axes.W006"]


# SMART Backend Services (smart app, ADR 0018): access tokens of system clients live this long;
# SMART_TOKEN_URL pins the token endpoint's URL (the aud of client assertions) when the public
# address differs from what Django sees; a client's jwks_uri is fetched with this timeout and
# kept this long.
SMART_ACCESS_TOKEN_SECONDS = env.int("SMART_ACCESS_TOKEN_SECONDS", default=300)
SMART_TOKEN_URL = env.str("SMART_TOKEN_URL", default="")
SMART_JWKS_TIMEOUT_SECONDS = env.float("SMART_JWKS_TIMEOUT_SECONDS", default=5.0)
SMART_JWKS_CACHE_SECONDS = env.int("SMART_JWKS_CACHE_SECONDS", default=300)
OTP_TOTP_ISSUER = "proplatform"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # first: it takes only its own sb_ tokens, which the person-token class would refuse
        "smart.authentication.SystemTokenAuthentication",
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["proplatform.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"auth-token": env.str("AUTH_TOKEN_RATE", default="10/min"),
                               "smart-token": env.str("SMART_TOKEN_RATE", default="60/min")},
    "EXCEPTION_HANDLER": "proplatform.api.exception_handler",
    # Throttles count per client address. X-Forwarded-For is trusted only as far as our own
    # proxies wrote it; otherwise a caller could send a new forged address with every attempt.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=1 if BEHIND_TLS_PROXY else 0),
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "proplatform API",
    "DESCRIPTION": "Patient-reported outcomes and home monitoring. FHIR R4 lives under /fhir/.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "proplatform.openapi.bulk_data_paths",
                             "proplatform.openapi.error_responses"],
}

# --- Security -----------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = HTTPS_ONLY
CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_SSL_REDIRECT = HTTPS_ONLY
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS_ONLY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS_ONLY
SECURE_HSTS_PRELOAD = HTTPS_ONLY
SECURE_REDIRECT_EXEMPT = [r"^health/$"]  # load balancers probe over plain HTTP
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp; issue 20). Scripts only from this origin or with the
# request's nonce; no plugins, no <base> elsewhere, never framed. connect-src 'self' covers the
# live feed's websocket on this host (CSP 3: 'self' matches ws:/wss: of the same host and port);
# with LIVE_FEED_PORT the triage page adds that port (alerts.views.triage).
# style-src: <style> elements need the nonce (the charts' pygal CSS gets it: templatetags
# "nonced"); style *attributes* are allowed ('unsafe-inline' in style-src-attr only). The
# server-rendered SVG charts and the progress bar use them, with values that change per chart
# (pygal's per-chart ids), so hashes cannot list them. An attribute styles its own element
# only — no selectors — so an injected one cannot read the page as injected CSS could.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- I18n, time, static -------------------------------------------------------------------------
LANGUAGE_CODE = "da"
LANGUAGES = [("da", "Dansk"), ("en", "English")]
FORMAT_MODULE_PATH = ["proplatform.formats"]  # short dates as each language writes them in tables
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Copenhagen"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and _bool("MANIFEST_STATIC", default=True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Serve static files straight from the app folders (no collectstatic) — for the demo and the
# test servers; production runs collectstatic at build time.
WHITENOISE_USE_FINDERS = _bool("WHITENOISE_USE_FINDERS", default=DEBUG)

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="proplatform@localhost")

# --- Clinical defaults --------------------------------------------------------------------------
# Readings are not accepted if their effective time lies further in the future than this
# (device clocks drift; a reading "from tomorrow" is a clock error, not a measurement).
READING_CLOCK_SKEW_SECONDS = env.int("READING_CLOCK_SKEW_SECONDS", default=300)
# The same allowance for a questionnaire answer's own time (FHIR QuestionnaireResponse.authored):
# a phone's clock a few minutes ahead is not an answer from the future.
RESPONSE_CLOCK_SKEW_SECONDS = env.int("RESPONSE_CLOCK_SKEW_SECONDS", default=300)

# --- Bulk export and quality databases (exports app, ADR 0007) --------------------------------
# NDJSON files of finished exports; under var/, which git ignores.
EXPORT_ROOT = Path(env.str("EXPORT_ROOT", default=str(BASE_DIR / "var" / "exports")))
EXPORT_FILE_TTL = env.int("EXPORT_FILE_TTL", default=24 * 3600)  # seconds a finished export's files live
# Export job rows (the status URL's record) are deleted this long after they were started; the
# audit trail keeps who exported and downloaded what (docs/operations.md, "Retention").
EXPORT_JOB_RETENTION_DAYS = env.int("EXPORT_JOB_RETENTION_DAYS", default=90)
EXPORT_MAX_CONCURRENT = env.int("EXPORT_MAX_CONCURRENT", default=1)  # queued/running jobs per user
# A running job's worker writes a heartbeat every few thousand rows; one silent for this long is
# taken as dead and failed by the sweep.
EXPORT_HEARTBEAT_STALE_SECONDS = env.int("EXPORT_HEARTBEAT_STALE_SECONDS", default=300)
EXPORT_RETRY_AFTER_SECONDS = env.int("EXPORT_RETRY_AFTER_SECONDS", default=5)
# The per-project key of the pseudonyms (HMAC-SHA256). Held outside the database: whoever has
# both the key and an export can re-identify. Production shape without it refuses pseudonymised
# exports (exports.privacy.pseudonym_key); DEBUG and the embedded shape use a fixed dev key.
EXPORT_PSEUDONYM_KEY = env.str("EXPORT_PSEUDONYM_KEY", default="") or (
    "dev-only-pseudonym-key-not-for-real-data" if DEBUG or EMBEDDED else ""
)
EXPORT_PUSH_BUNDLE_SIZE = env.int("EXPORT_PUSH_BUNDLE_SIZE", default=200)  # entries per batch Bundle
EXPORT_PUSH_ATTEMPTS = env.int("EXPORT_PUSH_ATTEMPTS", default=4)  # per Bundle, on 5xx/connection errors
EXPORT_PUSH_BACKOFF_SECONDS = env.float("EXPORT_PUSH_BACKOFF_SECONDS", default=1.0)  # doubles each retry
EXPORT_PUSH_TIMEOUT_SECONDS = env.float("EXPORT_PUSH_TIMEOUT_SECONDS", default=30.0)
# The sweep fails a send whose worker has been silent this long (it beats after every Bundle), and
# re-enqueues a send still not started this long after it was recorded (a lost message).
EXPORT_PUSH_STALE_SECONDS = env.int("EXPORT_PUSH_STALE_SECONDS", default=15 * 60)
EXPORT_PUSH_REQUEUE_SECONDS = env.int("EXPORT_PUSH_REQUEUE_SECONDS", default=5 * 60)

# --- Logging ------------------------------------------------------------------------------------
# Log lines carry the request id, never a CPR number or a name: log ids only.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "proplatform.middleware.RequestIdLogFilter"},
        "redact_cpr": {"()": "proplatform.privacy.RedactCprLogFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id", "redact_cpr"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Outcome indicators (issue 23): the smallest group a figure is shown for, and the minimum of
# "patients like me" on the patient's answers page and the clinician's patient page.
OUTCOMES_MIN_PATIENTS = env.int("OUTCOMES_MIN_PATIENTS", default=5)
OUTCOMES_PEERS_MIN = env.int("OUTCOMES_PEERS_MIN", default=20)

# Dashboard reads from a read replica (issue 23; outcomes.replica, docs/production.md): the
# outcome indicator pages, downloads and FHIR MeasureReports read there when this is set. In
# tests the replica mirrors the test database of "default".
DATABASE_REPLICA_URL = _url("DATABASE_REPLICA_URL", {"postgres", "postgresql"})
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = {**env.db_url_config(DATABASE_REPLICA_URL), "CONN_HEALTH_CHECKS": True,
                            "TEST": {"MIRROR": "default"}}
    DATABASE_ROUTERS = ["outcomes.replica.DashboardReplicaRouter"]
