"""Faults survived, with real processes: Celery workers killed with SIGKILL, Redis
stopped and started under a running worker and API, PostgreSQL stopped and started
under a running worker and API, a database that never answers, a database error in the
middle of an upload.

Each test starts what it needs as separate processes against the test database: a
private ``redis-server`` on a free port (so stopping it disturbs nothing else), Celery
workers (``celery -A config.celery_app worker``, prefork, one child) and, for the
outages, gunicorn. The PostgreSQL outage runs on a private PostgreSQL cluster (initdb
in a temporary folder, a copy of the test database): the shared server is never
stopped. Short time limits make redelivery quick: CELERY_TASK_TIME_LIMIT=6,
CELERY_VISIBILITY_TIMEOUT=8. Data must be committed for those processes to see it, so
the tests are transactional.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis
import requests
from celery import Celery
from django.conf import settings
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token

from conflicts import engine, inputs, services
from conflicts.models import Conflict, DetectionRun
from goals import rollups
from goals.models import RollupDemand, RollupRun, SharedGoalSnapshot
from metrics.models import Measurement
from tests import factories
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


def waiting_for_table(table: str) -> bool:
    """Whether some session waits for a lock on ``table`` (the blocked job)."""
    with psycopg.connect(database_url(), autocommit=True) as conn:
        return bool(
            conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = %s AND NOT l.granted",
                (table,),
            ).fetchone()[0]
        )


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

    def __init__(
        self, redis_url: str, log_dir: Path, environment: dict[str, str] | None = None
    ) -> None:
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
            env=environment or service_environment(redis_url),
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
def workers(tmp_path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(redis_url: str, environment: dict[str, str] | None = None) -> Worker:
        worker = Worker(redis_url, tmp_path, environment)
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

    def __init__(self, url: str | None = None) -> None:
        self.conn = psycopg.connect(url or database_url(), autocommit=True)

    def run(self, sql: str, *params: object) -> None:
        self.conn.execute(sql, params)

    def close(self) -> None:
        self.conn.close()


def advisory_lock_waiters(key: int, url: str | None = None) -> int:
    with psycopg.connect(url or database_url(), autocommit=True) as conn:
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
        wait_until(
            lambda: waiting_for_table("goals_rolluprun"),
            30,
            "the roll-up to wait for its run's table",
        )
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
    matrices, _ = inputs.load_matrices()
    expected, tests, _ = engine.scan_all(
        matrices, max_lag=3, min_pairs=12, q_threshold=0.05, block_size=1000
    )
    worker = workers(redis_server.url)
    run = services.detection_run_create(trigger="api")
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


@contextlib.contextmanager
def gunicorn(environment: dict[str, str], log_path: Path) -> Iterator[str]:
    """Serve the project with gunicorn (one worker, in its own process group) in
    ``environment``; yield its base URL once /healthz answers."""
    port = free_port()
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
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
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            # Failed to boot: say why now rather than after the whole wait.
            tail = log_path.read_text(errors="replace")[-3000:]
            raise AssertionError(f"gunicorn exited at start:\n{tail}")
        try:
            return requests.get(f"{base}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(answers, 60, "gunicorn to answer")
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log.close()


@pytest.fixture
def api_server(redis_server, tmp_path) -> Iterator[str]:
    with gunicorn(
        service_environment(redis_server.url), tmp_path / "gunicorn.log"
    ) as base:
        yield base


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


# --- PostgreSQL stopped and started ----------------------------------------------------


def postgres_program(name: str) -> str:
    """Return the path of a PostgreSQL server program (initdb and pg_ctl are not on
    Debian's PATH)."""
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise AssertionError(f"{name} not found: the outage test needs PostgreSQL")
    return found if isinstance(found, str) else found[-1]


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own, on a free port, that it may stop and
    start again on the same port (the shared server on 5432 is never touched).

    initdb refuses to run as root, so as root the cluster belongs to ``postgres``, in
    a folder of its own under /tmp (pytest's tmp_path is not open to other users).
    fsync is off: a test cluster need not survive a power cut, and it halves the time
    the copy of the test database takes; a fast stop still checkpoints cleanly.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="ducttape-pg-"))
        self.owner = "postgres" if os.geteuid() == 0 else None
        if self.owner:
            shutil.chown(self.folder, self.owner)
        self.data = self.folder / "data"
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/ducttape"

    def _run(self, program: str, *arguments: str) -> None:
        subprocess.run(  # noqa: S603 - PostgreSQL's own programs, fixed arguments
            [postgres_program(program), *arguments],
            user=self.owner,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    def start(self) -> None:
        """Start the server and return once it accepts connections."""
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l",
            str(self.folder / "log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server as an administrator would: ``-m fast`` ends every session."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def copy_of(self, source_url: str) -> None:
        """Create the database ``ducttape`` as a copy of ``source_url`` (schema and
        rows: a migrated database with the test's data in it, in about a second
        where ``manage.py migrate`` takes ten)."""
        with psycopg.connect(self.url.replace("/ducttape", "/postgres")) as admin:
            admin.autocommit = True
            admin.execute("CREATE DATABASE ducttape")
        dump = subprocess.Popen(  # noqa: S603 - PostgreSQL's own program
            [postgres_program("pg_dump"), "--no-owner", "--no-privileges", source_url],
            stdout=subprocess.PIPE,
        )
        subprocess.run(  # noqa: S603 - PostgreSQL's own program
            [postgres_program("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", self.url],
            stdin=dump.stdout,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        assert dump.wait(timeout=60) == 0

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.close()


def timed(call: Callable[[], requests.Response]) -> tuple[requests.Response, float]:
    """Return ``call``'s response and the seconds it took."""
    began = time.monotonic()
    response = call()
    return response, time.monotonic() - began


def retries_logged(worker: Worker, task_name: str) -> int:
    """Return how many retries of ``task_name`` the worker has logged."""
    pattern = rb"Task " + re.escape(task_name.encode()) + rb"\[[^\]]+\] retry: Retry in"
    return len(re.findall(pattern, worker.log_path.read_bytes()))


UNAVAILABLE = {
    "detail": "The database is not available right now. Try again in 5 seconds."
}


def test_while_postgresql_is_down_the_api_answers_503_and_everything_recovers(
    redis_server, private_postgres, workers, tmp_path, silo_a, silo_b, manager_a, cco
):
    world = build(silo_a, silo_b)
    # Uploads go to a KPI no shared goal uses: they ask for no roll-up of their own
    # (which would run 30 s later), so the only roll-up is the one enqueued below.
    calls = factories.KPIFactory(silo=silo_a, slug="calls")
    expected = rollups.compute(rollups.open_shared_goals())[0].result
    detection_run = services.detection_run_create(trigger="api")
    headers = {"Authorization": f"Token {Token.objects.create(user=manager_a).key}"}
    browser = Client()
    browser.force_login(cco)
    session = browser.cookies[settings.SESSION_COOKIE_NAME].value
    cookies = {settings.SESSION_COOKIE_NAME: session}
    private_postgres.copy_of(database_url())

    environment = service_environment(redis_server.url)
    environment.update(
        DATABASE_URL=private_postgres.url,
        # The session cookie made above is signed with this process's key.
        SECRET_KEY=settings.SECRET_KEY,
        # One thread: every request uses the same kept connection (CONN_MAX_AGE), so
        # the first request after a restart meets the connection the restart broke.
        GUNICORN_THREADS="1",
    )
    worker = workers(redis_server.url, environment)
    client = producer(redis_server.url)

    def upload(month: int, value: float) -> requests.Response:
        return requests.post(
            f"{base}/api/v1/measurements/bulk/",
            json={
                "measurements": [
                    {
                        "kpi": "sales.calls",
                        "period": f"2027-0{month}-01",
                        "value": value,
                    }
                ]
            },
            headers=headers,
            timeout=30,
        )

    def kpis() -> requests.Response:
        return requests.get(f"{base}/api/v1/kpis/", headers=headers, timeout=30)

    def report() -> requests.Response:
        return requests.get(
            f"{base}/report/conflicts/",
            cookies=cookies,
            allow_redirects=False,
            timeout=30,
        )

    figures: dict[str, object] = {}
    with gunicorn(environment, tmp_path / "gunicorn.log") as base:
        first = upload(1, 10.0)
        assert (first.status_code, first.json()) == (200, {"created": 1, "updated": 0})
        assert (kpis().status_code, report().status_code) == (200, 200)

        # A quick restart between two requests: the kept connection is dead, the
        # health check (CONN_HEALTH_CHECKS) notices and reconnects, nobody sees it.
        private_postgres.stop()
        private_postgres.start()
        assert kpis().status_code == 200

        # A detection run is under way when PostgreSQL stops: it has read and
        # computed, and waits for the register (held here) to write its result.
        blocker = Blocker(private_postgres.url)
        try:
            blocker.run("SELECT pg_advisory_lock(%s)", services.REGISTER_LOCK)
            detection = client.send_task(
                "conflicts.detect_conflicts", args=[detection_run.pk]
            )
            wait_until(
                lambda: advisory_lock_waiters(
                    services.REGISTER_LOCK, private_postgres.url
                ),
                30,
                "the run to wait for the register",
            )
            private_postgres.stop()
        finally:
            blocker.close()
        outage_began = time.monotonic()
        read, read_seconds = timed(kpis)
        write, write_seconds = timed(lambda: upload(2, 20.0))
        page, page_seconds = timed(report)
        ready = requests.get(f"{base}/readyz", timeout=30)
        alive = requests.get(f"{base}/healthz", timeout=30)
        for answer in (read, write):
            assert answer.status_code == 503
            assert answer.headers["Retry-After"] == "5"
            assert answer.headers["Content-Type"] == "application/json"
            assert answer.json() == UNAVAILABLE
        assert page.status_code == 503
        assert page.headers["Retry-After"] == "5"
        assert page.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert page.text == (
            "Service unavailable. The database is not available right now. Try again "
            "in 5 seconds.\n"
        )
        # The browser keeps its session: it is not logged out by the outage.
        assert settings.SESSION_COOKIE_NAME not in page.cookies
        assert (ready.status_code, ready.headers["Retry-After"], ready.json()) == (
            503,
            "5",
            {"status": "unavailable", "database": "unavailable"},
        )
        # Liveness is not readiness: restarting gunicorn would not bring the database
        # back, so /healthz stays ok and the process is left to recover by itself.
        assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
        assert max(read_seconds, write_seconds, page_seconds) < 10

        # A roll-up asked for while PostgreSQL is down.
        rollup = client.send_task(
            "goals.rollup_shared_goals", kwargs={"reason": "schedule"}
        )
        # Each attempt fails and the task is sent again with a countdown (1, 2, 2 s
        # here) instead of failing and being acknowledged, which would lose it; the
        # detection run stays "running" for its retry to take over. The outage lasts
        # until each task has been retried three times.
        wait_until(
            lambda: (
                retries_logged(worker, "goals.rollup_shared_goals") >= 3
                and retries_logged(worker, "conflicts.detect_conflicts") >= 3
            ),
            30,
            "the tasks to retry while PostgreSQL is down",
        )
        assert rollup.state == detection.state == "RETRY"

        private_postgres.start()
        restarted = time.monotonic()
        wait_until(
            lambda: kpis().status_code == 200, 30, "the API to recover by itself"
        )
        recovered = time.monotonic()
        assert rollup.get(timeout=60) == "done"
        assert detection.get(timeout=60) == "finished"
        tasks_done = time.monotonic()
        # The pipeline sends the refused upload again, as Retry-After asked.
        again = upload(2, 20.0)
        assert (again.status_code, again.json()) == (200, {"created": 1, "updated": 0})
        assert report().status_code == 200  # the same session, still logged in
        assert requests.get(f"{base}/readyz", timeout=30).status_code == 200

    figures.update(
        read_503_seconds=round(read_seconds, 3),
        write_503_seconds=round(write_seconds, 3),
        page_503_seconds=round(page_seconds, 3),
        outage_seconds=round(restarted - outage_began, 1),
        api_recovered_seconds=round(recovered - restarted, 2),
        tasks_done_seconds=round(tasks_done - restarted, 2),
        rollup_retries=retries_logged(worker, "goals.rollup_shared_goals"),
        detection_retries=retries_logged(worker, "conflicts.detect_conflicts"),
    )
    print(f"\nPostgreSQL outage: {figures}")  # the figures RELIABILITY.md quotes
    # No task failed on the way (a failure is acknowledged: the task would be lost),
    # and the outage cost one log line per request, not a traceback.
    assert b"raised unexpected" not in worker.log_path.read_bytes()
    assert b"Traceback" not in (tmp_path / "gunicorn.log").read_bytes()

    with psycopg.connect(private_postgres.url) as database:
        stored = database.execute(
            "SELECT period, value FROM metrics_measurement WHERE kpi_id = %s "
            "ORDER BY period",
            (calls.pk,),
        ).fetchall()
        assert stored == [(dt.date(2027, 1, 1), 10.0), (dt.date(2027, 2, 1), 20.0)]
        assert database.execute(
            "SELECT count(*) FROM metrics_measurement"
        ).fetchone() == (8 + 2,)
        assert database.execute("SELECT status FROM goals_rolluprun").fetchall() == [
            ("done",)
        ]
        assert database.execute(
            "SELECT shared_goal_id, progress, per_silo FROM goals_sharedgoalsnapshot"
        ).fetchall() == [(world["shared"].pk, expected.progress, expected.per_silo)]
        assert database.execute(
            "SELECT id, status FROM conflicts_detectionrun"
        ).fetchall() == [(detection_run.pk, "succeeded")]


def test_a_database_that_never_answers_gives_503_within_the_connect_timeout(
    redis_server, tmp_path
):
    # A port that completes the TCP handshake (the kernel's backlog) but never
    # answers: what a host that is down behind a load balancer, or a half-dead
    # server, looks like. Without a connect timeout psycopg waits 130 s.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    environment = service_environment(redis_server.url)
    environment.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{silent.getsockname()[1]}/x",
        DATABASE_CONNECT_TIMEOUT="2",
        # As in production: the probe comes over plain HTTP, API clients through the
        # TLS proxy; /readyz, like /healthz, is exempt from the HTTPS redirect.
        SECURE_SSL_REDIRECT="1",
    )
    try:
        with gunicorn(environment, tmp_path / "gunicorn.log") as base:
            read, read_seconds = timed(
                lambda: requests.get(
                    f"{base}/api/v1/kpis/",
                    headers={
                        "Authorization": f"Token {'0' * 40}",
                        "X-Forwarded-Proto": "https",
                    },
                    timeout=15,
                )
            )
            ready, ready_seconds = timed(
                lambda: requests.get(f"{base}/readyz", timeout=15)
            )
    finally:
        silent.close()

    assert (read.status_code, read.headers["Retry-After"], read.json()) == (
        503,
        "5",
        UNAVAILABLE,
    )
    assert (ready.status_code, ready.json()) == (
        503,
        {"status": "unavailable", "database": "unavailable"},
    )
    print(f"\nSilent database: API {read_seconds:.2f} s, /readyz {ready_seconds:.2f} s")
    # The connect timeout, plus the request's own work: bounded, not psycopg's 130 s.
    assert 2 <= read_seconds < 8
    assert 2 <= ready_seconds < 8


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
