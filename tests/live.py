"""A live stack for end-to-end and browser tests: the production servers (as in the Procfile:
granian for HTTP, uvicorn for the websockets; one uvicorn in the embedded shape) in their own
processes and, in the production shape (REDIS_URL set), a real Celery worker
process — both on the test database, exactly as they run in production."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LiveStack:
    url: str
    ws_url: str
    production_shape: bool
    redis_prefix: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    # What one process gets on top of ``env`` (as the Procfile sets it per line).
    process_env: dict[str, dict[str, str]] = field(default_factory=dict)

    def start(self, name: str) -> None:
        """(Re)start one process, appending to its log (a restarted worker keeps its history)."""
        self.processes[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and args
            self.commands[name], cwd=ROOT, env={**self.env, **self.process_env.get(name, {})},
            stdout=self.logs[name].open("a"), stderr=subprocess.STDOUT)

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=20) as response:
                return response.status, _body(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _body(error.read())


def _body(raw: bytes) -> Any:
    """JSON when it is JSON; a server error page comes back as text for the assertion message."""
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")[:500]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def celery_sender(stack: LiveStack) -> Any:
    """A Celery client speaking to the stack's worker (its Redis, its own key prefix)."""
    from celery import Celery

    sender = Celery("proplatform-test-sender", broker=stack.env["REDIS_URL"])
    sender.conf.broker_transport_options = {"global_keyprefix": f"{stack.redis_prefix}:"}
    sender.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE
    return sender


def _wait_healthy(stack: LiveStack, logs: dict[str, Path], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        for name, proc in stack.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{logs[name].read_text()[-4000:]}")
        try:
            status, last = stack.request("GET", "/health/")
            if status == 200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
        time.sleep(0.3)
    raise RuntimeError(f"stack not healthy after {timeout}s: {last}")


def _wait_listening(stack: LiveStack, name: str, port: int, logs: dict[str, Path], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.processes[name].poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{logs[name].read_text()[-4000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{name} not listening on port {port} after {timeout}s")


def web_command(port: int, *, workers: int = 2, threads: int = 4) -> list[str]:
    """The Procfile's web: line (granian, WSGI in blocking threads; ADR 0012, ADR 0017) on ``port``."""
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--blocking-threads", str(threads), "--no-ws", "--respawn-failed-workers",
            "--log-level", "warning", "proplatform.wsgi:application"]


@contextmanager
def start_live_stack(tmp_path: Path, *, env_overrides: dict[str, str] | None = None,
                     worker_concurrency: int = 1) -> Iterator[LiveStack]:
    """Start the servers and (production shape) a Celery worker on the test database; stop them on
    exit and print their log tails. ``env_overrides`` changes their environment (e.g. another
    REDIS_URL for a test that stops its own Redis)."""
    from tests.conftest import production_shape_required

    production_shape = bool(os.environ.get("REDIS_URL")) and connection.vendor == "postgresql"
    if production_shape_required() and not production_shape:
        pytest.fail("PROPLATFORM_REQUIRE_PRODUCTION_SHAPE=1 but DATABASE_URL/REDIS_URL do not "
                    "point at PostgreSQL and Redis")
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "HTTPS_ONLY": "0",
        "DEBUG": "0",
        "WHITENOISE_USE_FINDERS": "1",
        "MANIFEST_STATIC": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SWEEP_INTERVAL_SECONDS": "3600",
        # Browser tests log staff in with a password (two-factor login has its own tests).
        "REQUIRE_STAFF_TWO_FACTOR": "0",
        "PYTHONUNBUFFERED": "1",
        **(env_overrides or {}),
    }
    port = _free_port()
    # Own Redis key space: concurrent test runs must not take each other's tasks or messages.
    env["REDIS_PREFIX"] = f"pptest-{os.getpid()}-{port}"
    stack = LiveStack(url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}",
                      production_shape=production_shape, redis_prefix=env["REDIS_PREFIX"])
    if production_shape:
        # As the Procfile runs it: HTTP over WSGI in two granian worker processes (ADR 0012, 0017).
        commands = {"web": web_command(port)}
    else:
        # The embedded shape: one ASGI process for HTTP and websockets, whose in-memory channel
        # layer lives in that process.
        commands = {"web": [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                            "--workers", "1", "--lifespan", "off", "--no-proxy-headers", "--no-access-log",
                            "proplatform.asgi:application"]}
    ws_port = None
    if production_shape:
        # As the Procfile's ws: line: the triage websockets on a process of their own (the proxy
        # routes /ws/ there), so that a burst of uploads cannot hold up the live feed.
        ws_port = _free_port()
        commands["ws"] = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(ws_port),
                          "--workers", "1", "--lifespan", "off", "--no-proxy-headers", "--no-access-log",
                          "proplatform.asgi:application"]
        stack.ws_url = f"ws://127.0.0.1:{ws_port}"
        commands["worker"] = [sys.executable, "-m", "celery", "-A", "proplatform", "worker",
                              "--loglevel=INFO", f"--concurrency={worker_concurrency}", "--without-gossip",
                              "--without-mingle", f"--hostname=test-{port}@%h"]
    logs = {name: tmp_path / f"{name}.log" for name in commands}
    stack.env, stack.commands, stack.logs = env, commands, logs
    if production_shape:
        stack.process_env["web"] = stack.process_env["ws"] = {"DB_POOL_MAX_SIZE": env.get("DB_POOL_MAX_SIZE", "8")}
        # No proxy here: the triage page connects to the ws process's port itself.
        stack.process_env["web"] = {**stack.process_env["web"], "LIVE_FEED_PORT": str(ws_port)}
    for name in commands:
        stack.start(name)
    try:
        _wait_healthy(stack, logs)
        if ws_port is not None:
            _wait_listening(stack, "ws", ws_port, logs)
        yield stack
    finally:
        for proc in stack.processes.values():
            proc.terminate()
        for name, proc in stack.processes.items():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
            sys.stdout.write(f"\n--- {name} log (tail) ---\n{logs[name].read_text()[-3000:]}\n")


@pytest.fixture
def live_stack(live_cast: Any, tmp_path: Path) -> Iterator[LiveStack]:
    with start_live_stack(tmp_path) as stack:
        yield stack
