"""Faults survived, with real processes: Celery workers killed with SIGKILL, Redis
stopped and started under a running worker and API, a database error in the middle of
an upload.

Each test starts what it needs as separate processes against the test database: a
private ``redis-server`` on a free port (so stopping it disturbs nothing else), Celery
workers (``celery -A config.celery_app worker``, prefork, one child) and, for the
outage, gunicorn. Short time limits make redelivery quick: CELERY_TASK_TIME_LIMIT=6,
CELERY_VISIBILITY_TIMEOUT=8. Data must be committed for those processes to see it, so
the tests are transactional.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis
import requests
from celery import Celery
from django.db import connection
from rest_framework.authtoken.models import Token

from conflicts import engine, services
from conflicts.models import Conflict, DetectionRun
from goals import rollups
from goals.models import RollupDemand, RollupRun, SharedGoalSnapshot
from metrics.models import Measurement
from tests.conflicts.company import standard_company
from tests.goals.rollup_world import build

ROOT = Path(__file__).resolve().parent.parent
VISIBILITY_TIMEOUT = 8
TIME_LIMIT = 6

pytestmark = [
    pytest.mark.faults,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class RedisServer:
    """A private redis-server that a test may stop and start again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - a fixed command line
            [
                shutil.which("redis-server") or "/usr/bin/redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(answers, 10, "redis-server to answer")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def database_url() -> str:
    settings = connection.settings_dict
    return (
        f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:"
        f"{settings['PORT'] or 5432}/{settings['NAME']}"
    )


def service_environment(redis_url: str) -> dict[str, str]:
    """The environment of a production-like process on the test database."""
    environment = dict(os.environ)
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DATABASE_URL=database_url(),
        REDIS_URL=redis_url,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
        CELERY_TASK_TIME_LIMIT=str(TIME_LIMIT),
        API_THROTTLE_RATE="100000/min",
        PYTHONUNBUFFERED="1",
    )
    return environment


class Worker:
    """``celery worker`` in its own process group: prefork with one child."""

    count = 0

    def __init__(self, redis_url: str, log_dir: Path) -> None:
        Worker.count += 1
        self.log_path = log_dir / f"worker-{Worker.count}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config.celery_app",
                "worker",
                "--pool=prefork",
                "--concurrency=1",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                f"--hostname=fault{Worker.count}@%h",
            ],
            cwd=ROOT,
            env=service_environment(redis_url),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            lambda: b"ready." in self.log_path.read_bytes(), 60, "the worker to start"
        )

    def child_pids(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def kill_everything(self) -> None:
        """SIGKILL the worker and its children at once: the node is lost."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def workers(tmp_path) -> Iterator[Callable[[str], Worker]]:
    started: list[Worker] = []

    def start(redis_url: str) -> Worker:
        worker = Worker(redis_url, tmp_path)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


def producer(redis_url: str) -> Celery:
    """A Celery client of the private Redis (the suite's own app stays untouched)."""
    return Celery("faults", broker=redis_url, backend=redis_url)


class Blocker:
    """A second database session that holds locks the task under test must wait for."""

    def __init__(self) -> None:
        self.conn = psycopg.connect(database_url(), autocommit=True)

    def run(self, sql: str, *params: object) -> None:
        self.conn.execute(sql, params)

    def close(self) -> None:
        self.conn.close()


def advisory_lock_waiters(key: int) -> int:
    with psycopg.connect(database_url(), autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND objid = %s AND NOT granted",
            (key,),
        ).fetchone()[0]


def advisory_lock_held(key: int) -> bool:
    with psycopg.connect(database_url(), autocommit=True) as conn:
        return bool(
            conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND objid = %s AND granted",
                (key,),
            ).fetchone()[0]
        )


# --- a worker killed in the middle of a job ------------------------------------------


def test_a_worker_killed_mid_rollup_is_replaced_and_the_rollup_done_once(
    redis_server, workers, silo_a, silo_b
):
    world = build(silo_a, silo_b)
    expected = rollups.compute(rollups.open_shared_goals())[0].result
    first = workers(redis_server.url)
    blocker = Blocker()
    # The roll-up computes and writes its snapshots, then waits here, before it can
    # commit: the worker is killed in the middle of the job.
    blocker.run("BEGIN")
    blocker.run("LOCK TABLE goals_rolluprun IN ACCESS EXCLUSIVE MODE")
    try:
        producer(redis_server.url).send_task(
            "goals.rollup_shared_goals", kwargs={"reason": "schedule"}
        )
        wait_until(
            lambda: advisory_lock_held(rollups.ROLLUP_LOCK), 30, "the roll-up to start"
        )
        time.sleep(0.5)
        first.kill_everything()
    finally:
        blocker.run("ROLLBACK")
        blocker.close()
    assert SharedGoalSnapshot.objects.count() == 0  # the killed run committed nothing

    # A new worker gets the message back once the visibility timeout has passed.
    workers(redis_server.url)
    wait_until(
        lambda: RollupRun.objects.filter(status="done").exists(),
        VISIBILITY_TIMEOUT + 60,
        "the redelivered roll-up",
    )

    snapshot = SharedGoalSnapshot.objects.get()
    assert snapshot.shared_goal == world["shared"]
    assert snapshot.progress == expected.progress
    assert snapshot.per_silo == expected.per_silo
    assert list(RollupRun.objects.values_list("status", flat=True)) == ["done"]


def test_a_worker_child_killed_mid_detection_is_redelivered_and_completes(
    redis_server, workers
):
    standard_company().save()
    matrices, _ = engine.load_matrices()
    expected, tests, _ = engine.scan_all(
        matrices, max_lag=3, min_pairs=12, q_threshold=0.05, block_size=1000
    )
    worker = workers(redis_server.url)
    run = services.create_run(trigger="api")
    blocker = Blocker()
    # Hold the register: the run reads, computes, then waits to write the register.
    blocker.run("SELECT pg_advisory_lock(%s)", services.REGISTER_LOCK)
    try:
        producer(redis_server.url).send_task(
            "conflicts.detect_conflicts", args=[run.pk]
        )
        wait_until(
            lambda: advisory_lock_waiters(services.REGISTER_LOCK),
            30,
            "the run to wait for the register",
        )
        (child,) = worker.child_pids()
        os.kill(child, signal.SIGKILL)
        # acks_late + reject_on_worker_lost: the message goes back at once, marked
        # redelivered, and a new child takes the run over.
        wait_until(
            lambda: worker.child_pids() and worker.child_pids() != [child],
            30,
            "a new pool child",
        )
        wait_until(
            lambda: b"WorkerLostError" in worker.log_path.read_bytes(),
            30,
            "the worker to notice the lost child",
        )
    finally:
        blocker.run("SELECT pg_advisory_unlock(%s)", services.REGISTER_LOCK)
        blocker.close()

    run = wait_until(
        lambda: DetectionRun.objects.filter(pk=run.pk, status="succeeded").first(),
        60,
        "the redelivered detection run",
    )
    assert DetectionRun.objects.count() == 1
    assert run.tests == tests
    conflicts = [a for a in expected if a.kind == "conflict"]
    assert sorted(
        Conflict.objects.values_list(
            "leader_kpi_id", "affected_kpi_id", "lag", "correlation"
        )
    ) == sorted((a.leader, a.follower, a.lag, a.r) for a in conflicts)
    assert run.new_conflicts == len(conflicts) == 1


# --- Redis stopped and started ---------------------------------------------------------


@pytest.fixture
def api_server(redis_server, tmp_path) -> Iterator[str]:
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and gunicorn
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--config=config/gunicorn.conf.py",
            f"--bind=127.0.0.1:{port}",
            "--workers=1",
        ],
        cwd=ROOT,
        env=service_environment(redis_server.url),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(answers, 60, "gunicorn to answer")
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log.close()


def test_while_redis_is_down_the_api_serves_and_the_rollup_catches_up(
    redis_server, workers, api_server, silo_a, silo_b, manager_a
):
    world = build(silo_a, silo_b)
    workers(redis_server.url)
    client = producer(redis_server.url)
    client.send_task("goals.rollup_shared_goals", kwargs={"reason": "schedule"}).get(
        timeout=30
    )
    headers = {"Authorization": f"Token {Token.objects.create(user=manager_a).key}"}

    redis_server.stop()

    kpis = requests.get(f"{api_server}/api/v1/kpis/", headers=headers, timeout=10)
    upload = requests.post(
        f"{api_server}/api/v1/measurements/bulk/",
        json={
            "measurements": [
                {"kpi": "sales.deals", "period": "2027-03-01", "value": 200}
            ]
        },
        headers=headers,
        timeout=10,
    )
    figures = requests.get(
        f"{api_server}/api/v1/figures/?kpi=sales.deals", headers=headers, timeout=10
    )
    assert (kpis.status_code, upload.status_code, figures.status_code) == (
        200,
        200,
        200,
    )
    assert upload.json() == {"created": 0, "updated": 1}
    assert Measurement.objects.get(kpi=world["deals"], period="2027-03-01").value == 200
    demand = RollupDemand.objects.get()
    assert demand.requested > demand.satisfied  # remembered in PostgreSQL

    redis_server.start()
    # The worker reconnects by itself; a job enqueued after the restart completes.
    result = client.send_task("goals.rollup_catch_up")
    assert result.get(timeout=60) == "done"

    latest = SharedGoalSnapshot.objects.get(day=dt.date.today())
    assert latest.contributions[0]["actual"] == 40 + 50 + 200
    demand.refresh_from_db()
    assert demand.requested == demand.satisfied


# --- a database error in the middle of a bulk upload ------------------------------------


def test_a_database_error_mid_upload_writes_nothing(api, manager_a, silo_a):
    from tests import factories

    kpi = factories.KPIFactory(silo=silo_a, slug="deals")
    rows = [
        {
            "kpi": kpi.key,
            "period": f"{2000 + index // 12}-{index % 12 + 1:02d}-01",
            "value": 666.0 if index == 4200 else float(index),
        }
        for index in range(4500)
    ]
    with connection.cursor() as cursor:
        # The third batch of 2,000 rows hits an error the database raises itself.
        cursor.execute(
            """
            CREATE FUNCTION fault_on_666() RETURNS trigger AS $$
            BEGIN
                IF NEW.value = 666 THEN
                    RAISE EXCEPTION 'simulated disk failure';
                END IF;
                RETURN NEW;
            END; $$ LANGUAGE plpgsql;
            CREATE TRIGGER fault_on_666 BEFORE INSERT OR UPDATE ON metrics_measurement
                FOR EACH ROW EXECUTE FUNCTION fault_on_666();
            """
        )
    try:
        api.force_authenticate(manager_a)
        response = api.post(
            "/api/v1/measurements/bulk/", {"measurements": rows}, format="json"
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER fault_on_666 ON metrics_measurement; "
                "DROP FUNCTION fault_on_666();"
            )

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "detail": "The database failed during the upload; nothing was written. Send "
        "the same body again."
    }
    assert Measurement.objects.count() == 0
