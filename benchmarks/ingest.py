"""Generation ingest through the real stack: gunicorn + PostgreSQL, posted to from other processes.

What runs: a fresh PostgreSQL database (``royalties_bench`` by default) is created and migrated, a model
version and a scoped API key are registered, and gunicorn serves ``royalties.wsgi`` on a free port with
production settings (DEBUG off). Client processes (a separate ``multiprocessing`` pool, keep-alive HTTP/1.1
connections) then post:

- ``batch``: ``{"generations": [...]}`` bodies of ``--batch-size`` (500) generations, each unique;
- ``single``: one generation per request, the same server, the same clients, in the same run.

Bodies are encoded before the clock starts, so the figures are the server's, not the JSON encoder's of the
client. Every request must answer 201 with every item ``created``; afterwards the table must hold exactly
the generations sent. Prints one JSON line per path (generations/s, requests/s, p50/p99 latency) and one
comparing them; the target is 5,000 generations/s on the batch path.

    .venv/bin/python benchmarks/ingest.py
    .venv/bin/python benchmarks/ingest.py --workers 3 --threads 2 --clients 4 --batches 300 --singles 3000
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TARGET_PER_S = 5_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_urls(admin_url: str, name: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(admin_url)
    return admin_url, urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def _recreate_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _server_env(database_url: str, data_dir: str) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "royalties.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "benchmark-only-" + uuid.uuid4().hex,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "ROYALTIES_DATA_DIR": data_dir,
        "ROYALTIES_LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": "",
        "PYTHONPATH": str(ROOT),
    }


SETUP = """
import django; django.setup()
from attribution.models import AIModel, ModelVersion
from attribution.services.api_keys import api_key_create
m = AIModel.objects.create(name="bench", modality="text")
v = ModelVersion.objects.create(ai_model=m, label="v1")
print(v.pk, api_key_create(name="benchmark", model_version=v, actor_label="benchmark").secret)
"""


TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class CpuMeter:
    """CPU seconds spent by the gunicorn workers and by the PostgreSQL backends serving the benchmark database.

    Wall-clock throughput on a shared 2-core machine depends on whatever else runs; CPU per generation does
    not, so it is reported next to it.
    """

    def __init__(self, server_pid: int, database_url: str, database: str):
        self.server_pid, self.database_url, self.database = server_pid, database_url, database

    def _pids(self) -> tuple[list[int], list[int]]:
        with psycopg.connect(self.database_url) as conn:
            backends = [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [self.database]
            )]
        return [self.server_pid, *_children(self.server_pid)], backends

    def snapshot(self) -> dict[int, float]:
        web, db = self._pids()
        return {**{pid: _cpu_seconds(pid) for pid in web}, **{-pid: _cpu_seconds(pid) for pid in db}}

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> tuple[float, float]:
        web = sum(after[p] - before.get(p, 0.0) for p in after if p > 0)
        db = sum(after[p] - before.get(p, 0.0) for p in after if p < 0)
        return web, db


def _item(version_id: int, external_id: str, n: int, when: str) -> dict:
    return {
        "model_version": version_id,
        "external_id": external_id,
        "prompt": f"Write a short story about lighthouse keeper number {n} and the storm of the century.",
        "output_text": f"Story {n}: the lamp turned all night; by morning the keeper had counted {n % 97} ships. " * 3,
        "revenue": f"0.{n % 1000:03d}125",
        "currency": "USD",
        "generated_at": when,
        "metadata": {"tokens": 180 + n % 50, "user_tier": "pro" if n % 3 else "free"},
    }


def _client(args) -> dict:
    """One client process: encode its bodies, wait for the others, post them over keep-alive connections."""
    import threading

    (index, port, key, version_id, path, count, batch_size, threads, barrier) = args
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    prefix = f"{path}-{index}-{uuid.uuid4().hex[:8]}"
    bodies: list[bytes] = []
    for r in range(count):
        if path == "batch":
            items = [_item(version_id, f"{prefix}-{r}-{i}", r * batch_size + i, when) for i in range(batch_size)]
            bodies.append(json.dumps({"generations": items}).encode())
        else:
            bodies.append(json.dumps(_item(version_id, f"{prefix}-{r}", r, when)).encode())
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Connection": "keep-alive"}
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def run(share: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        local = []
        for body in share:
            started = time.perf_counter()
            conn.request("POST", "/api/v1/generations/", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            local.append(time.perf_counter() - started)
            if response.status != 201:
                with lock:
                    failures.append(f"{response.status}: {payload[:300]!r}")
        conn.close()
        with lock:
            latencies.extend(local)

    shares = [bodies[t::threads] for t in range(threads)]
    barrier.wait()
    started = time.perf_counter()
    cpu_started = time.process_time()
    workers = [threading.Thread(target=run, args=(share,)) for share in shares]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"started": started, "finished": time.perf_counter(), "latencies": latencies, "failures": failures,
            "requests": len(bodies), "cpu": time.process_time() - cpu_started}


def _run_path(*, path: str, port: int, key: str, version_id: int, requests: int, batch_size: int,
              clients: int, threads: int, meter: CpuMeter | None = None) -> dict:
    per_client = [requests // clients + (1 if c < requests % clients else 0) for c in range(clients)]
    with mp.Manager() as manager:
        barrier = manager.Barrier(clients + 1)
        with mp.Pool(clients) as pool:
            pending = pool.map_async(_client, chunksize=1, iterable=[
                (c, port, key, version_id, path, per_client[c], batch_size, threads, barrier) for c in range(clients)
            ])
            barrier.wait()  # the clients have encoded their bodies: measure from here
            before = meter.snapshot() if meter else {}
            results = pending.get()
            after = meter.snapshot() if meter else {}
    failures = [f for r in results for f in r["failures"]]
    if failures:
        raise SystemExit(f"{path}: {len(failures)} request(s) failed, e.g. {failures[0]}")
    wall = max(r["finished"] for r in results) - min(r["started"] for r in results)
    latencies = sorted(x for r in results for x in r["latencies"])
    per_request = batch_size if path == "batch" else 1
    generations = sum(r["requests"] for r in results) * per_request
    web_cpu, db_cpu = CpuMeter.spent(before, after) if meter else (0.0, 0.0)
    return {
        "path": path,
        "batch_size": per_request,
        "requests": len(latencies),
        "generations": generations,
        "seconds": round(wall, 2),
        "generations_per_s": round(generations / wall),
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
        "clients": clients * threads,
        # CPU actually spent, whatever else the machine was doing: web = gunicorn, db = PostgreSQL backends.
        "web_cpu_ms_per_generation": round(web_cpu * 1000 / generations, 3),
        "db_cpu_ms_per_generation": round(db_cpu * 1000 / generations, 3),
        "client_cpu_ms_per_generation": round(sum(r["cpu"] for r in results) * 1000 / generations, 3),
        "generations_per_server_cpu_s": round(generations / (web_cpu + db_cpu)) if web_cpu + db_cpu else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--database", default="royalties_bench")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker (gthread)")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--client-threads", type=int, default=2, help="connections per client process")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--batches", type=int, default=300, help="batch requests in the batch run")
    parser.add_argument("--singles", type=int, default=3_000, help="requests in the single-post run")
    parser.add_argument("--keep-db", action="store_true", help="leave the benchmark database behind")
    args = parser.parse_args()

    admin_url, database_url = _database_urls(args.admin_url, args.database)
    _recreate_database(admin_url, args.database)
    data_dir = tempfile.mkdtemp(prefix="royalties-bench-")
    env = _server_env(database_url, data_dir)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    version_id, key = subprocess.run([PYTHON, "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True,
                                     text=True).stdout.split()
    port = _free_port()
    server = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "royalties.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--worker-class", "gthread", "--threads", str(args.threads),
         "--keep-alive", "30", "--timeout", "120", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("gunicorn did not come up")
            time.sleep(0.3)
        common = {"port": port, "key": key, "version_id": int(version_id), "clients": args.clients,
                  "threads": args.client_threads}
        meter = CpuMeter(server.pid, database_url, args.database)
        # Warm-up: every worker imports, connects to PostgreSQL and fills its caches before the clock runs.
        _run_path(path="batch", requests=args.workers * args.threads * 2, batch_size=args.batch_size, **common)
        results = [
            _run_path(path="batch", requests=args.batches, batch_size=args.batch_size, meter=meter, **common),
            _run_path(path="single", requests=args.singles, batch_size=1, meter=meter, **common),
        ]
        server_info = {"server": f"gunicorn gthread {args.workers}x{args.threads}", "cpus": os.cpu_count(),
                       "load_avg_1m_after": round(os.getloadavg()[0], 2)}
        for result in results:
            print(json.dumps({**result, **server_info}), flush=True)
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("SELECT count(*) FROM attribution_generation").fetchone()[0]
        warmup = args.workers * args.threads * 2 * args.batch_size
        expected = warmup + results[0]["generations"] + results[1]["generations"]
        batch, single = results
        print(json.dumps({
            "compare": "batch_vs_single",
            "speedup": round(batch["generations_per_s"] / single["generations_per_s"], 1),
            "target_generations_per_s": TARGET_PER_S,
            "batch_meets_target": batch["generations_per_s"] >= TARGET_PER_S,
            "rows_stored": stored,
            "rows_expected": expected,
        }), flush=True)
        if stored != expected:
            raise SystemExit(f"stored {stored} generations, sent {expected}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        if not args.keep_db:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
