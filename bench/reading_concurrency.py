"""Single-reading POST over HTTP with 20 concurrent clients against a real HTTP server, beside
a no-op endpoint (through Django: its middleware and the device-token authentication) in the
same run. The readings take the device fast path in front of Django (ADR 0016) as in
production; READINGS_FAST_PATH=0 in the environment sends them through Django too.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/proplatform REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/reading_concurrency.py [CLIENTS] [REQUESTS_PER_CLIENT] \\
        [--server=granian|gunicorn|gunicorn-sync|uvicorn|daphne] [--workers=N] [--worker] \\
        [--client=lean|http.client] [--neighbour=SHARE]

The server defaults to the Procfile's: granian (Rust HTTP, the WSGI application in blocking
threads; ADR 0017) with WEB_CONCURRENCY worker processes (default 2) of WEB_THREADS threads
(default 4). For comparison: ``--server=gunicorn`` (threaded workers, the web process from ADR
0012 to ADR 0017), ``--server=uvicorn`` (ASGI, the web process before ADR 0012),
``--server=gunicorn-sync`` (one request at a time per process) and ``--server=daphne`` (the
single daphne process used at first).
The load generator's 20 clients are threads of this process, each with a kept-alive connection
written to and read from a raw socket (``LeanClient``); ``--client=http.client`` uses the
standard library's client, which costs about twice the CPU per request on the same cores.
With REDIS_URL (the production shape) the request commits and enqueues the evaluation to Redis
— a worker would evaluate it; none runs here, so the measured time is the request's own. Every
request sends its task (EVALUATION_QUEUED_SECONDS=0: as if a worker took each one at once; with
no worker, the one-waiting-task mark of ADR 0011 would otherwise spare all but the first).
Without it, the evaluation runs inside the request (embedded shape). The load generator runs
on the same machine as the server and the database, and is counted in the same CPU budget.
With ``--worker`` a real Celery worker runs beside the server and the one-waiting-task mark is on
(the production defaults): requests send a task only when none waits, and the worker's
evaluation competes for the same 2 cores. With granian or gunicorn, a last run serves a WSGI app
without Django (bench/bare_wsgi.py) by the same command: the floor that the server and the load
generator alone set on this machine.
``--neighbour=0.2`` runs a noisy neighbour beside every run: one process pinned to each CPU
that burns that share of it in every 10 ms (by its own CPU clock) and sleeps the rest. Where
it may (root), it runs at real-time priority and so takes the CPU the moment it wants it,
whatever else waits, as a host that steals CPU time from this virtual machine does (the
"stolen" column); otherwise the scheduler shares the CPU with it and it gets less. Each run
prints the share of the machine's CPU the neighbour got.
Target (issue #4): p95 <= 30 ms with 20 concurrent clients. Runs on a throw-away test database.
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proplatform.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on; the name may hold spaces


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (the server's supervisor and its worker processes)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            parents[int(entry.name)] = int(fields[1])
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sorted(tree)


def db_backends(name: str) -> list[int]:
    """PostgreSQL backends serving the server on the benchmark's database (unique name:
    test_…_<pid>), less this process's own connection."""
    own = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            own = cursor.fetchone()[0]
    return [pid for pid, cmdline in command_lines().items()
            if cmdline.startswith(b"postgres: ") and f" {name} ".encode() in cmdline and pid != own]


def command_lines() -> dict[int, bytes]:
    """Every process's command line (NUL-separated), by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:
                continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        if fields := _stat(pid):
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / _TICK


def cpu_ticks() -> tuple[int, int]:
    """The machine's CPU time so far, in ticks: in all, and stolen (a virtual machine's CPUs
    waiting while the host runs something else; /proc/stat's steal column)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


@dataclass
class Run:
    latencies: list[float]
    wall: float
    server_cpu: float  # seconds of CPU the server processes used during the run
    db_cpu: float | None  # the database backends' (None: they did not live through the run)
    client_cpu: float  # the load generator's own threads
    stolen: float = 0.0  # the share of the machine's CPU time the host took during the run
    neighbour: float | None = None  # the share the noisy neighbour got (--neighbour), if one ran


class LeanClient:
    """One kept-alive HTTP/1.1 connection that POSTs a body and reads the answer's status and
    body: the request's head written once, the answer's head read for its status and
    Content-Length only. http.client parses every answer's headers as an e-mail message, which
    on this machine costs the load generator about as much CPU as the server's no-Django floor,
    taken from the same 2 cores as the server (``--client=http.client`` measures with it)."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self.port = port
        self.sock = self._connect()
        lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept-Encoding: identity",
                 *(f"{name}: {value}" for name, value in headers.items())]
        self.head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode()
        self.buffer = b""

    def __call__(self, body: bytes) -> int:
        self.sock.sendall(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        buffer = self.buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            buffer += self._receive()
        head, buffer = buffer[:end], buffer[end + 4:]
        status = int(head[9:12])
        length, close = None, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if length is None:  # chunked: every answer measured here says its length
            raise RuntimeError(f"an answer without Content-Length: {head!r}")
        while len(buffer) < length:
            buffer += self._receive()
        self.buffer = buffer[length:]
        if close:  # the server ends the connection: the next request opens another, as http.client does
            self.sock.close()
            self.sock = self._connect()
            self.buffer = b""
        return status

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _receive(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


# One process of the noisy neighbour, on CPU number CPU: burns SHARE of each 10 ms of its own
# CPU clock, then sleeps until the next 10 ms begin; at real-time priority where it may.
_NEIGHBOUR = """
import os, sys, time
share, cpu, period = float(sys.argv[1]), int(sys.argv[2]), 0.010
os.sched_setaffinity(0, {cpu})
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
except PermissionError:
    pass
while True:
    begun, burnt = time.monotonic(), time.process_time()
    while time.process_time() - burnt < share * period:
        pass
    time.sleep(max(0.0, period - (time.monotonic() - begun)))
"""


def start_neighbour(share: float) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", _NEIGHBOUR, str(share), str(cpu)])
            for cpu in sorted(os.sched_getaffinity(0))]


def run_clients(port: int, tokens: list[str], per_client: int, path: str, body, *,  # type: ignore[no-untyped-def]
                server_pid: int, db_name: str, lean: bool = True, neighbour: tuple[int, ...] | list[int] = ()) -> Run:
    latencies: list[float] = []
    failures: list[int | str] = []
    lock = threading.Lock()
    start = timezone.now() - timedelta(days=1)

    def client(n: int, token: str) -> None:
        mine = []
        try:
            if lean:
                post = LeanClient(port, path, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            else:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for i in range(per_client):
                payload = json.dumps(body(n, i, start)).encode()
                started = time.perf_counter()
                if lean:
                    status = post(payload)
                else:
                    conn.request("POST", path, payload, {"Authorization": f"Bearer {token}",
                                                         "Content-Type": "application/json"})
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                mine.append((time.perf_counter() - started) * 1000)
                if status not in (200, 201):
                    with lock:
                        failures.append(status)
                    break
            post.close() if lean else conn.close()
        except Exception as exc:  # noqa: BLE001  (reported after the run: a client lost is a failed run)
            with lock:
                failures.append(f"client {n}: {exc!r}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n, t)) for n, t in enumerate(tokens)]
    servers, backends = process_tree(server_pid), db_backends(db_name)
    server_cpu, db_cpu, client_cpu = cpu_seconds(servers), cpu_seconds(backends), time.process_time()
    ticks, neighbour_cpu = cpu_ticks(), cpu_seconds(list(neighbour))
    wall = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall
    total, steal = (after - before for after, before in zip(cpu_ticks(), ticks, strict=True))
    neighbour_cpu = cpu_seconds(list(neighbour)) - neighbour_cpu
    if failures:
        raise RuntimeError(f"{path}: {len(failures)} clients failed: {sorted(set(map(str, failures)))[:5]}; "
                           "see the server log")
    # Backends that came and went (a connection per request) are not counted: report none then.
    backends_after = db_backends(db_name)
    return Run(latencies, wall, cpu_seconds(servers) - server_cpu,
               cpu_seconds(backends) - db_cpu if backends and backends_after == backends else None,
               time.process_time() - client_cpu, steal / total if total else 0.0,
               neighbour_cpu / (wall * (os.cpu_count() or 1)) if neighbour else None)


def report(label: str, run: Run) -> float:
    ordered = sorted(run.latencies)
    n = len(ordered)
    p50, p95 = statistics.median(ordered), ordered[int(n * 0.95) - 1]
    db = f"{run.db_cpu / n * 1000:5.2f}" if run.db_cpu is not None else "  n/a"
    print(f"{label:<30} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  {n / run.wall:6.0f} requests/s   CPU per request: "
          f"server {run.server_cpu / n * 1000:5.2f} ms, database {db} ms, load generator "
          f"{run.client_cpu / n * 1000:5.2f} ms; stolen by the host {run.stolen:4.0%}"
          + (f", taken by the neighbour {run.neighbour:4.0%}" if run.neighbour is not None else ""))
    return p95


def ceiling(label: str, run: Run, clients: int) -> None:
    """What the machine permits: with every CPU busy on this request's work alone, the rate
    is CPUs / CPU-seconds per request, and a closed loop of ``clients`` waits clients / rate."""
    per = (run.server_cpu + (run.db_cpu or 0.0) + run.client_cpu) / len(run.latencies)
    rate = (os.cpu_count() or 1) / per
    print(f"  {label}: {per * 1000:.2f} ms CPU per request -> at most {rate:.0f} requests/s on "
          f"{os.cpu_count()} CPUs, so {clients} clients wait >= {clients / rate * 1000:.1f} ms on average")


def server_command(server: str, workers: int, port: int) -> list[str]:
    threads = os.environ.get("WEB_THREADS", "4")
    if server == "daphne":
        return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "proplatform.asgi:application"]
    if server == "uvicorn":  # ASGI, as the web: process ran before ADR 0012 (and the ws: process runs)
        return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--workers",
                str(workers), "--lifespan", "off", "--no-access-log", "proplatform.asgi:application"]
    if server == "gunicorn":  # the web: process from ADR 0012 to ADR 0017: threaded workers
        return [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                "--worker-class", "gthread", "--threads", threads, "--forwarded-allow-ips", "",
                "--reuse-port", "--no-control-socket", "proplatform.wsgi:application"]
    if server == "gunicorn-sync":  # WSGI, one request at a time per process (needs a buffering proxy)
        return [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                "--forwarded-allow-ips", "", "--no-control-socket", "proplatform.wsgi:application"]
    from tests.live import web_command  # the Procfile's web: granian (ADR 0017)

    return web_command(port, workers=workers, threads=int(threads))


def start_server(command: list[str], env: dict[str, str], port: int, log: Any) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return server


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    options = dict(a[2:].partition("=")[::2] for a in sys.argv[1:] if a.startswith("--"))
    clients = int(args[0]) if len(args) > 0 else 20
    per_client = int(args[1]) if len(args) > 1 else 100
    server_name = options.get("server", "granian")
    with_worker = "worker" in options
    lean = options.get("client", "lean") == "lean"
    workers = int(options.get("workers", os.environ.get("WEB_CONCURRENCY", "2")))
    neighbour_share = float(options.get("neighbour", "0"))
    setup_test_environment()
    old_name = settings.DATABASES["default"]["NAME"]
    connection.creation.create_test_db(verbosity=0)
    server = worker = None
    neighbour: list[subprocess.Popen[bytes]] = []
    port = free_port()
    try:
        from monitoring.models import Device, DeviceKind, DeviceToken
        from tests.factories import make_cast, make_patient

        cast = make_cast()
        tokens = []
        for n in range(clients):  # each client is its own patient's device, as in real life
            patient = make_patient(f"bench-{n}", f"0101{n % 100:02d}-{1000 + n:04d}", cast.team_a, cast.program_a)
            device = Device.objects.create(kind=DeviceKind.PULSE_OXIMETER, serial=f"B-{n}", patient=patient,
                                           lent_from=timezone.localdate() - timedelta(days=365))
            tokens.append(DeviceToken.issue(device)[1])
        db = settings.DATABASES["default"]
        # The server gets the same connection options as given (e.g. ?conn_max_age=60).
        query = urlsplit(os.environ.get("DATABASE_URL", "")).query
        url = (f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
               + (f"?{query}" if query else "")
               if connection.vendor == "postgresql" else f"sqlite:///{db['NAME']}")
        env = {**os.environ, "DATABASE_URL": url, "HTTPS_ONLY": "0", "ROOT_URLCONF": "bench.urls",
               "EVALUATION_QUEUED_SECONDS": os.environ.get("EVALUATION_QUEUED_SECONDS", "600") if with_worker else "0",
               # The Procfile's web: line: a pool of PostgreSQL connections per process. Without
               # it every request would fork a PostgreSQL backend (CONN_MAX_AGE=0). Django refuses
               # a pool beside persistent connections: ?conn_max_age=N in DATABASE_URL means no pool.
               "DB_POOL_MAX_SIZE": "0" if "conn_max_age" in query else os.environ.get("DB_POOL_MAX_SIZE", "8"),
               "REDIS_PREFIX": f"bench-{port}", "LOG_LEVEL": "WARNING", "SECRET_KEY": settings.SECRET_KEY}
        log = tempfile.NamedTemporaryFile("w+", prefix="bench-server-", suffix=".log", delete=False)  # noqa: SIM115
        command = server_command(server_name, workers, port)
        server = start_server(command, env, port, log)
        if with_worker:
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "proplatform", "worker", "--loglevel=WARNING",
                 "--concurrency=1", "--without-gossip", "--without-mingle", f"--hostname=bench-{port}@%h"],
                cwd=ROOT, env={**env, "DB_POOL_MAX_SIZE": "0"}, stdout=log, stderr=subprocess.STDOUT)
            time.sleep(3)

        def reading(n, i, start):  # type: ignore[no-untyped-def]
            return {"measure": "spo2", "value": 93 + i % 6, "unit": "%", "client_id": f"c{n}-{i}",
                    "effective_at": (start + timedelta(seconds=i)).isoformat()}

        shape = "production (Redis broker)" if os.environ.get("REDIS_URL") else "embedded (evaluation in-request)"
        if os.environ.get("READINGS_FAST_PATH", "1") == "0":
            shape += ", readings through Django (READINGS_FAST_PATH=0)"
        served = "daphne, 1 process" if server_name == "daphne" else f"{server_name}, {workers} worker processes"
        print(f"{served}, {connection.vendor}, {shape}; {clients} clients x {per_client} requests "
              f"({'raw sockets' if lean else 'http.client'}), {os.cpu_count()} CPUs")
        if neighbour_share:
            neighbour = start_neighbour(neighbour_share)
            print(f"a noisy neighbour burns {neighbour_share:.0%} of each CPU beside every run")
        where = {"server_pid": server.pid, "db_name": db["NAME"], "lean": lean,
                 "neighbour": [p.pid for p in neighbour]}
        run_clients(port, tokens, 10, "/bench/noop", reading, **where)  # warm-up: every worker connects
        noop_run = run_clients(port, tokens, per_client, "/bench/noop", reading, **where)
        worker_cpu = cpu_seconds(process_tree(worker.pid)) if worker else 0.0
        reading_run = run_clients(port, tokens, per_client, "/api/v1/readings", reading, **where)
        if worker is not None:
            from alerts.evaluation import PendingEvaluation

            deadline = time.monotonic() + 120
            while PendingEvaluation.objects.exists() and time.monotonic() < deadline:
                time.sleep(0.1)  # the worker evaluates what it has not yet
            worker_cpu = cpu_seconds(process_tree(worker.pid)) - worker_cpu
        noop = report("no-op POST through Django", noop_run)
        p95 = report("POST /api/v1/readings", reading_run)
        print(f"p95 reading / no-op: {p95 / noop:.2f}x; target p95 <= 30 ms: {'met' if p95 <= 30 else 'NOT met'}")
        print(f"load average while running: {os.getloadavg()[0]:.1f} (other work on the machine slows every figure)")
        ceiling("no-op", noop_run, clients)
        ceiling("reading", reading_run, clients)
        if worker is not None:
            print(f"  the Celery worker evaluating the readings meanwhile (until none waits): "
                  f"{worker_cpu / len(reading_run.latencies) * 1000:.2f} ms CPU per reading, on the same cores")
        if server_name.startswith(("granian", "gunicorn")):
            # The floor: the same server command with no Django at all (bench/bare_wsgi.py).
            server.terminate()
            server.wait(timeout=10)
            bare = [part.replace("proplatform.wsgi:", "bench.bare_wsgi:") for part in command]
            server = start_server(bare, env, port, log)
            where = {**where, "server_pid": server.pid}
            run_clients(port, tokens, 10, "/", reading, **where)
            bare_run = run_clients(port, tokens, per_client, "/", reading, **where)
            report("the same server, no Django", bare_run)
            ceiling("no Django", bare_run, clients)
    except RuntimeError as exc:
        print(exc, f"({log.name}):", Path(log.name).read_text()[-3000:], sep="\n")
        raise SystemExit(1) from exc
    finally:
        for process in neighbour:
            process.kill()
            process.wait()
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        if os.environ.get("REDIS_URL"):  # the evaluation messages no worker took
            import redis

            r = redis.Redis.from_url(os.environ["REDIS_URL"])
            for key in r.scan_iter(f"bench-{port}*"):
                r.delete(key)
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
