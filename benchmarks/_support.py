"""What the benchmarks share: a throwaway database, a live gunicorn, memory, tables,
the measurement COPY and the calendar of seeded months.

The API benchmarks run inside ``bench_session()``, which creates the database
``ducttape_bench`` (``BENCH_DATABASE_URL`` overrides it), migrates it, and on the way
out, however the run ends, stops the server and drops the database. The others run
inside ``django_database(database_url(suffix))``, a database of their own beside it.
"""

import contextlib
import ctypes
import datetime as dt
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as `python benchmarks/x.py`, the project itself is not on the path.
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/ducttape_bench"
WORKERS = 2
#: The CCO-team account the benchmarks call the API as.
USERNAME = "bench_cco"


class BenchmarkError(Exception):
    """Setup failed, or the data did not check out: the benchmark exits non-zero."""


def database_url(suffix: str = "") -> str:
    """Return the benchmark database's URL; refuse one whose name lacks "bench".

    The benchmark drops and recreates that database, so a URL pointing at a real
    database by mistake must not get that far. ``suffix`` (for example "_rollup")
    gives a benchmark a database of its own: BENCH_DATABASE_URL's name + suffix.
    """
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    name = urlsplit(url).path.lstrip("/")
    if "bench" not in name:
        raise BenchmarkError(
            f"BENCH_DATABASE_URL names the database {name!r}: the benchmark drops and "
            "recreates it, so its name must contain 'bench'."
        )
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix))


def month(index: int, *, first: dt.date) -> dt.date:
    """Return the first day of the month ``index`` months after ``first``'s month."""
    years, months = divmod(first.month - 1 + index, 12)
    return dt.date(first.year + years, months + 1, 1)


def _maintenance_url(url: str) -> tuple[str, str]:
    """Return the URL of the server's ``postgres`` database, and the database's name."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")


def drop_database(url: str) -> None:
    maintenance, name = _maintenance_url(url)
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


def database_exists(url: str) -> bool:
    maintenance, name = _maintenance_url(url)
    with psycopg.connect(maintenance) as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
        )


def create_database(url: str) -> None:
    """Create the database afresh (dropping any left over by an interrupted run)."""
    drop_database(url)
    maintenance, name = _maintenance_url(url)
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def app_environment(url: str, allowed_hosts: str = "127.0.0.1") -> dict[str, str]:
    """Return the environment of a production-like process on the benchmark database."""
    environment = dict(os.environ)
    # Without REDIS_URL the throttle counters live in each worker's memory; the
    # benchmarks' rate is far below the limit set here anyway.
    environment.pop("REDIS_URL", None)
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DATABASE_URL=url,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS=allowed_hosts,
        SECURE_SSL_REDIRECT="0",
        API_THROTTLE_RATE="1000000/min",
        PYTHONUNBUFFERED="1",
    )
    return environment


def migrate(url: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=app_environment(url),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchmarkError(
            f"manage.py migrate failed:\n{result.stdout}{result.stderr}"
        )


def setup_django(url: str) -> None:
    """Configure Django in this process on the benchmark database.

    For seeding through the ORM, and for requests through Django's test client.
    """
    os.environ.update(app_environment(url, allowed_hosts="127.0.0.1,testserver"))
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def setup_django_without_database() -> None:
    """Configure Django for pure computations that touch no database (an SQLite
    file that is never opened stands in for it)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ["DATABASE_URL"] = "sqlite:///:memory:"
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def create_api_token() -> str:
    """Create a CCO-team user and return a DRF token key for it."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from core.roles import CCO_TEAM

    user = get_user_model().objects.create_user(USERNAME, password=None)
    user.groups.add(Group.objects.get(name=CCO_TEAM))
    return Token.objects.create(user=user).key


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: the gunicorn master gets SIGTERM if the benchmark dies, even by SIGKILL.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Server:
    """A gunicorn serving ``config.wsgi`` on a free loopback port."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    timeout: int

    def worker_pids(self) -> list[int]:
        return children_of(self.process.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def gunicorn_timeout() -> int:
    """Return gunicorn's worker timeout: production's (config/gunicorn.conf.py) unless
    overridden."""
    return int(os.environ.get("BENCH_GUNICORN_TIMEOUT", "60"))


@contextlib.contextmanager
def live_server(
    url: str, log_dir: Path, extra_environment: dict[str, str] | None = None
) -> Iterator[Server]:
    """Run gunicorn as the Dockerfile does (config/gunicorn.conf.py) until the block ends.

    ``extra_environment`` adds to (or overrides) the app's environment, for example
    REDIS_URL for a benchmark that wants Redis as in production.
    """
    port = _free_port()
    log_path = log_dir / "gunicorn.log"
    timeout = gunicorn_timeout()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--config=config/gunicorn.conf.py",
        f"--bind=127.0.0.1:{port}",
        f"--workers={WORKERS}",
        f"--timeout={timeout}",
        f"--error-logfile={log_path}",
    ]
    if _has_control_socket():
        # Gunicorn 25+ opens a control socket in the home directory by default: keep
        # off it, it may be another gunicorn's.
        command.append("--no-control-socket")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and gunicorn)
            command,
            cwd=ROOT,
            env={**app_environment(url), **(extra_environment or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path, timeout)
    try:
        _wait_until_healthy(server)
        yield server
    finally:
        _stop(process)


def _has_control_socket() -> bool:
    from gunicorn.config import Config

    return "control_socket_disable" in Config().settings


def _wait_until_healthy(server: Server, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchmarkError(f"gunicorn exited at start:\n{server.log_tail()}")
        with contextlib.suppress(requests.RequestException):
            response = requests.get(f"{server.url}/healthz", timeout=2)
            if response.status_code == 200 and len(server.worker_pids()) == WORKERS:
                return
        time.sleep(0.1)
    raise BenchmarkError(
        f"/healthz did not answer in {seconds} s:\n{server.log_tail()}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        # The master and its workers share the session started for them.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def children_of(pid: int) -> list[int]:
    """Return the pids of the processes whose parent is ``pid``."""
    children = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                # The command name (2nd field) is in parentheses and may hold spaces.
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return sorted(children)


def status_kb(pid: int, name: str) -> int | None:
    """Return a ``VmRSS``/``VmHWM``-like line of /proc/<pid>/status in kB, if readable."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


@dataclass
class MemorySampler:
    """Poll the VmRSS of a gunicorn's workers every ``interval`` seconds in a thread."""

    server: Server
    interval: float = 0.05
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    _pids: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> "MemorySampler":
        self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        now = time.monotonic()
        if not self._pids:
            self._pids = self.server.worker_pids()
        for pid in self._pids:
            rss = status_kb(pid, "VmRSS")
            if rss is None:
                # A worker died (gunicorn's timeout kills it): look for its successor.
                self._pids = []
            else:
                self.samples.append((now, pid, rss))

    def by_worker(self) -> dict[int, list[tuple[float, int]]]:
        series: dict[int, list[tuple[float, int]]] = {}
        for moment, pid, rss in self.samples:
            series.setdefault(pid, []).append((moment, rss))
        return series


#: The columns a benchmark seeds or ingests measurements with COPY, in its text format.
MEASUREMENT_COPY_SQL = (
    "COPY metrics_measurement (kpi_id, period, value, source, created_at, updated_at)"
    " FROM STDIN"
)
COPY_BLOCK_BYTES = 1 << 20


def copy_measurements(conn: psycopg.Connection[Any], text: bytes) -> None:
    """COPY measurement rows (``MEASUREMENT_COPY_SQL``'s text format) on ``conn``.

    In 1 MB blocks, as a client streaming a file would send them; the caller commits.
    """
    with conn.cursor() as cursor, cursor.copy(MEASUREMENT_COPY_SQL) as copy:
        for start in range(0, len(text), COPY_BLOCK_BYTES):
            copy.write(text[start : start + COPY_BLOCK_BYTES])


def seed_measurements(url: str, text: bytes, expected: int) -> int:
    """COPY the rows, commit, VACUUM (ANALYZE), and return the count of measurements.

    Raise BenchmarkError unless exactly ``expected`` measurements are stored.
    """
    with psycopg.connect(url) as conn:
        copy_measurements(conn, text)
        conn.commit()
        # Hint bits and statistics now, or the first timed runs pay for them.
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE)")
        row = conn.execute("SELECT count(*) FROM metrics_measurement").fetchone()
    count = int(row[0]) if row else 0
    if count != expected:
        raise BenchmarkError(f"seeded {count} measurements, expected {expected}")
    return count


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else float("inf")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def print_table(
    title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Print a plain-text table, numbers right-aligned."""
    cells = [[str(cell) for cell in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print(
            "  ".join(
                cell.ljust(width) if column == 0 else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if index == 0:
            print("  ".join("-" * width for width in widths))


def verdict(met: bool) -> str:
    return "PASS" if met else "MISS"


def trim_profile(text: str) -> str:
    """Return a pstats report from its column header on, without blank lines."""
    lines = text.splitlines()
    start = next(
        (index for index, line in enumerate(lines) if "ncalls" in line), len(lines)
    )
    return "\n".join(line for line in lines[start:] if line.strip())


def machine_description() -> str:
    """Return the date, the CPUs, the memory and Python's version, on one line."""
    memory_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        memory_kb = int(meminfo.readline().split()[1])
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo
                if line.startswith("model name")
            ),
            "",
        )
    return (
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs"
        f"{f' ({cpu})' if cpu else ''}, {memory_kb / 1024**2:.0f} GiB RAM; "
        f"Python {platform.python_version()}"
    )


def postgres_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0].split()[0]}" if row else "PostgreSQL"


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def django_database(url: str) -> Iterator[None]:
    """Create and migrate the benchmark's own database and set Django up on it.

    On the way out (also on an error, Ctrl-C, SIGTERM or SIGHUP) close Django's
    connections and drop the database.
    """
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_system_exit)
    with contextlib.ExitStack() as cleanup:
        try:
            create_database(url)
        except psycopg.Error as exc:
            raise BenchmarkError(
                f"cannot create the benchmark database: {exc}"
            ) from exc
        cleanup.callback(drop_database, url)
        migrate(url)
        setup_django(url)
        from django.db import connections

        cleanup.callback(connections.close_all)
        print(f"database: {urlsplit(url).path.lstrip('/')}", flush=True)
        yield


@dataclass
class Session:
    """The setup a benchmark gets: its database, a live server and an API token."""

    database_url: str
    server: Server
    token: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


@contextlib.contextmanager
def bench_session() -> Iterator[Session]:
    """Set everything up; on the way out stop the server and drop the database.

    Django is set up in this process too, on the same database, for seeding.
    """
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_system_exit)
    url = database_url()
    with contextlib.ExitStack() as cleanup:
        log_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory()))
        try:
            create_database(url)
        except psycopg.Error as exc:
            raise BenchmarkError(
                f"cannot create the benchmark database: {exc}"
            ) from exc
        cleanup.callback(drop_database, url)
        migrate(url)
        setup_django(url)
        from django.db import connections

        cleanup.callback(connections.close_all)
        token = create_api_token()
        connections.close_all()
        server = cleanup.enter_context(live_server(url, log_dir))
        yield Session(url, server, token)


def run(main: Callable[[], int]) -> None:
    """Run a benchmark's ``main``; exit 1 with the reason when it cannot measure."""
    try:
        code = main()
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code)
