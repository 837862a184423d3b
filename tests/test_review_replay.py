"""Issue 10, "Done means", second bullet: the outside review's reproductions, replayed
against a fresh deployment, are all refused with a clear 4xx or are harmless, with 0
server errors in the logs.

The deployment is built the way production runs (docker-compose.yml, Dockerfile), as
separate processes: a fresh database on the shared PostgreSQL server
(``ducttape_replay_<random>``: ``migrate``, then ``seed_demo``, dropped at the end),
``collectstatic`` into a temporary STATIC_ROOT, a private ``redis-server``, one Celery
worker and gunicorn with two gthread workers, all on the production settings
(``config.settings.base``, DEBUG off, a random SECRET_KEY, SECURE_SSL_REDIRECT off as
docker-compose defaults it, consolemail:// as its EMAIL_URL defaults). Every request
goes over real HTTP with ``requests``, with the demo logins (sessions through
``/admin/login/`` with its CSRF token) and API tokens.

The steps run in this module's order and share the one deployment:

* 7 and 12 first: the first detection run of the fresh demo finds its high-severity
  conflicts and mails them (to the worker's log, consolemail://), so the names with
  CR/LF are put in place before it, and point 1 then has a conflict page to open;
* 4 last: it locks ``support_manager`` out at 127.0.0.1 for 30 minutes;
* 14 (PostgreSQL stopped under a running deployment) is
  ``tests/test_faults.py::test_while_postgresql_is_down_the_api_answers_503_and_everything_recovers``:
  stopping the shared server is not an option here.

The last test checks that no answer of the replay was a 5xx, and that the logs of
gunicorn (access and error logs, the processes' stderr, where Django's LOGGING writes)
and of the worker hold no traceback, no "Internal Server Error", no 5xx access line; it
prints a table of the figures (``pytest -s``).

The replay needs none of the test database: it only touches its own database (through
the deployment, and with psycopg for tokens and checks), so its tests are not
``django_db`` ones.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg
import pytest
import requests
from django.conf import settings

from core.middleware import URLENCODED_ONLY_UTF8
from tests.test_faults import (
    ROOT,
    RedisServer,
    Worker,
    free_port,
    producer,
    wait_until,
)
from tests.test_security_web import (
    EXPECTED_CSP,
    EXPECTED_PERMISSIONS_POLICY,
    LOCKED_TITLE,
    csp_directives,
)

pytestmark = pytest.mark.faults

PASSWORD = "ducttape-demo"  # the demo logins' published password
WRONG = "not-the-password"
HYPERLINK = '=HYPERLINK("http://evil.example/","x")'
CALC = "+cmd|' /C calc'!A0"
TOO_LARGE = (
    "Enter a number whose magnitude is below 1e15 (1,000,000,000,000,000); "
    "got {:g}. No KPI reaches that size: check the unit or the decimal point."
)
TEXT_LIMIT = "Ensure this field has no more than 5000 characters."
#: The Support KPIs the demo measures monthly (support.nps is quarterly).
SUPPORT_MONTHLY = [
    "support.tickets_opened",
    "support.csat_pct",
    "support.first_response_hours",
    "support.backlog_tickets",
    "support.first_contact_resolution_pct",
]
IMPORT_MONTHS = 4_000  # x 5 KPIs: the review's 20,000-row file
IMPORT_LAST_MONTH = (2026, 10)  # the demo's last period: the file overlaps it
IMPORT_VALUE = "1000.5"  # no demo measurement has this value: overlaps are "changed"


def too_large(value: float) -> str:
    return TOO_LARGE.format(value)


# --- the deployment ---------------------------------------------------------------------


@dataclass
class Answer:
    method: str
    path: str
    status: int
    seconds: float


class Client(requests.Session):
    """A client of the deployment: paths are relative to its base URL, every request
    has a timeout, and every answer is recorded (for the final count of 5xx)."""

    def __init__(self, base: str, answers: list[Answer]) -> None:
        super().__init__()
        self.base = base
        self.hooks["response"].append(self._record)
        self._answers = answers

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._answers.append(
            Answer(
                response.request.method or "",
                urlsplit(response.url).path,
                response.status_code,
                response.elapsed.total_seconds(),
            )
        )

    def request(
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        return super().request(
            method, self.base + url if url.startswith("/") else url, *args, **kwargs
        )

    def form(self, path: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
        """POST a form with the CSRF token of the session's cookie, not following a
        redirect."""
        return self.post(
            path,
            data={"csrfmiddlewaretoken": self.cookies["csrftoken"], **data},
            allow_redirects=False,
            **kwargs,
        )

    def upload(
        self, kpi: str, period: str, value: float, **extra: str
    ) -> requests.Response:
        """``POST measurements/bulk/`` of one measurement, as a pipeline does."""
        row = {"kpi": kpi, "period": period, "value": value, **extra}
        return self.post("/api/v1/measurements/bulk/", json={"measurements": [row]})


@dataclass
class Deployment:
    base: str
    database_url: str
    redis_url: str
    logs: dict[str, Path]
    worker: Worker
    tokens: dict[str, str]
    ids: dict[str, int]
    answers: list[Answer] = field(default_factory=list)
    #: (point, what was replayed, what came back, figures): the summary table.
    results: list[tuple[str, str, str, str]] = field(default_factory=list)
    setup_seconds: dict[str, float] = field(default_factory=dict)

    def session(self, user: str | None = None) -> Client:
        """A client of the deployment; with ``user``, using their API token."""
        client = Client(self.base, self.answers)
        if user is not None:
            client.headers["Authorization"] = f"Token {self.tokens[user]}"
        return client

    def log_in(
        self, username: str, password: str = PASSWORD, next_: str | None = None
    ) -> tuple[Client, requests.Response]:
        """Log in through the admin's login form (the report pages' login too), as a
        browser does: GET the form for the CSRF cookie, POST it; return the session
        and the POST's answer (not followed)."""
        session = self.session()
        assert session.get("/admin/login/").status_code == 200
        path = "/admin/login/" + (f"?next={quote(next_, safe='')}" if next_ else "")
        answer = session.form(path, {"username": username, "password": password})
        return session, answer

    def logged_in(self, username: str) -> Client:
        session, answer = self.log_in(username)
        assert (answer.status_code, answer.headers["Location"]) == (302, "/start/")
        return session

    def query(self, sql: str, *params: object) -> list[tuple]:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            return connection.execute(sql, params).fetchall()

    def rollup(self) -> str:
        """Run the shared-goal roll-up on the worker, as the nightly schedule does."""
        client = producer(self.redis_url)
        try:
            return client.send_task(
                "goals.rollup_shared_goals", kwargs={"reason": "schedule"}
            ).get(timeout=60)
        finally:
            client.close()

    def note(self, point: str, replayed: str, outcome: str, figures: str = "") -> None:
        self.results.append((point, replayed, outcome, figures))


def shared_server() -> dict[str, Any]:
    """The PostgreSQL server of this test run (host, port, user), not its database."""
    database = settings.DATABASES["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql", (
        "the replay needs PostgreSQL (DATABASE_URL)"
    )
    return {
        "host": database["HOST"] or "127.0.0.1",
        "port": int(database["PORT"] or 5432),
        "user": database["USER"] or "postgres",
        "password": database["PASSWORD"] or None,
    }


def database_url(name: str) -> str:
    """The URL of the database ``name`` on the shared server."""
    server = shared_server()
    login = quote(server["user"], safe="")
    if server["password"]:
        login += ":" + quote(server["password"], safe="")
    return f"postgres://{login}@{server['host']}:{server['port']}/{name}"


def administer(sql: str) -> None:
    server = shared_server()
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as connection:
        connection.execute(sql)


class Command:
    """``manage.py <arguments>`` in the deployment's environment, its output in a file."""

    def __init__(self, environment: dict[str, str], log: Path, *arguments: str) -> None:
        self.log = log
        self.output = log.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter, manage.py
            [sys.executable, "manage.py", *arguments],
            cwd=ROOT,
            env=environment,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )

    def finish(self, timeout: float = 180) -> None:
        """Wait for the command; fail with its output unless it succeeded."""
        code = self.process.wait(timeout=timeout)
        self.output.close()
        assert code == 0, (
            f"{self.process.args} exited {code}:\n{self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.output.close()


@contextlib.contextmanager
def gunicorn(
    environment: dict[str, str], logs: dict[str, Path]
) -> Iterator[subprocess.Popen]:
    """gunicorn as docker-compose's web service runs it (the project's gunicorn.conf.py,
    two gthread workers), with its access and error logs in files and its stderr
    (Django's LOGGING) in a third."""
    output = logs["gunicorn output"].open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and gunicorn
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--config=config/gunicorn.conf.py",
            f"--bind={environment['GUNICORN_BIND']}",
            "--workers=2",
            f"--access-logfile={logs['gunicorn access']}",
            f"--error-logfile={logs['gunicorn error']}",
            # The default format, with the time taken and the worker's pid.
            "--access-logformat="
            '%(h)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms pid%(p)s',
        ],
        cwd=ROOT,
        env=environment,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        output.close()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("replay")
    name = f"ducttape_replay_{secrets.token_hex(4)}"
    url = database_url(name)
    redis_server = RedisServer()
    port = free_port()
    environment = dict(os.environ)
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DATABASE_URL=url,
        REDIS_URL=redis_server.url,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # docker-compose.yml's defaults: it serves plain HTTP.
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        EMAIL_URL="consolemail://",
        STATIC_ROOT=str(folder / "static"),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        # The defaults of .env.example, so that a local .env cannot change the counts.
        LOGIN_FAILURE_LIMIT="10",
        LOGIN_COOLOFF_MINUTES="30",
        TRUSTED_PROXY_COUNT="0",
        API_THROTTLE_RATE="600/min",
        PYTHONUNBUFFERED="1",
    )
    logs = {
        "gunicorn access": folder / "gunicorn-access.log",
        "gunicorn error": folder / "gunicorn-error.log",
        "gunicorn output": folder / "gunicorn-output.log",
    }
    timings: dict[str, float] = {}
    began = time.monotonic()
    administer(f'CREATE DATABASE "{name}"')
    try:
        with contextlib.ExitStack() as stack:
            # As docker-compose orders it: the static files are in the image, the
            # migrate service runs before web and worker start. The demo data is
            # loaded while they start (nothing is asked of them before it is in).
            migrate = Command(
                environment, folder / "migrate.log", "migrate", "--noinput"
            )
            stack.callback(migrate.stop)
            static = Command(
                environment, folder / "collectstatic.log", "collectstatic", "--noinput"
            )
            stack.callback(static.stop)
            stack.callback(redis_server.stop)
            redis_server.start()
            static.finish()
            migrate.finish()
            timings["migrated"] = time.monotonic() - began
            seed = Command(environment, folder / "seed.log", "seed_demo")
            stack.callback(seed.stop)
            web = stack.enter_context(gunicorn(environment, logs))
            worker = Worker(redis_server.url, folder, environment)
            stack.callback(worker.stop)
            logs["worker"] = worker.log_path
            base = f"http://127.0.0.1:{port}"

            def ready() -> bool:
                if web.poll() is not None:
                    tail = logs["gunicorn error"].read_text(errors="replace")[-3000:]
                    raise AssertionError(f"gunicorn exited at start:\n{tail}")
                try:
                    return requests.get(f"{base}/readyz", timeout=2).status_code == 200
                except requests.RequestException:
                    return False

            wait_until(ready, 60, "gunicorn to answer /readyz")
            seed.finish()
            timings["deployment up, demo loaded"] = time.monotonic() - began

            tokens = {}
            with psycopg.connect(url, autocommit=True) as connection:
                for username in (
                    "cco",
                    "sales_manager",
                    "support_manager",
                    "bi_reader",
                ):
                    tokens[username] = secrets.token_hex(20)
                    connection.execute(
                        "INSERT INTO authtoken_token (key, created, user_id) "
                        "SELECT %s, now(), id FROM auth_user WHERE username = %s",
                        (tokens[username], username),
                    )
                ids = {
                    "FY2026": connection.execute(
                        "SELECT id FROM cycles_cycle WHERE name = 'FY2026'"
                    ).fetchone()[0],
                    "Profitable growth": connection.execute(
                        "SELECT id FROM goals_sharedgoal WHERE name = 'Profitable growth'"
                    ).fetchone()[0],
                    "CSAT goal": connection.execute(
                        "SELECT g.id FROM goals_goal g JOIN metrics_kpi k "
                        "ON k.id = g.kpi_id WHERE k.key = 'support.csat_pct'"
                    ).fetchone()[0],
                }
            yield Deployment(
                base=base,
                database_url=url,
                redis_url=redis_server.url,
                logs=logs,
                worker=worker,
                tokens=tokens,
                ids=ids,
                setup_seconds=timings,
            )
    finally:
        administer(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(folder / "static", ignore_errors=True)


# --- 12 and 7: names with CR/LF in the alert mail; 1e200; a detection run ----------------


def test_point_12_and_7_detection_tests_every_kpi_it_can_and_mails_names_on_one_line(
    deployment,
):
    cco = deployment.session("cco")
    # 12: the review put CR/LF (and HTML) into names that alert mails quote.
    silo = cco.patch(
        "/api/v1/silos/marketing/", json={"name": "Marketing\r\nBcc: evil@example.com"}
    )
    kpi = cco.patch(
        "/api/v1/kpis/marketing.leads/", json={"name": "<b>Leads</b>\nqualified"}
    )
    assert (silo.status_code, kpi.status_code) == (200, 200)
    assert (silo.json()["name"], kpi.json()["name"]) == (
        "Marketing\r\nBcc: evil@example.com",
        "<b>Leads</b>\nqualified",
    )

    # 7: a finite but huge value, which used to drop a KPI's pairs from detection.
    huge = deployment.session("sales_manager").upload(
        "sales.deals_closed", "2026-11-01", 1e200
    )
    assert huge.status_code == 400
    assert huge.json() == {
        "errors": [{"index": 0, "field": "value", "message": too_large(1e200)}]
    }
    assert deployment.query(
        "SELECT count(*) FROM metrics_measurement WHERE abs(value) >= 1e15"
    ) == [(0,)]

    began = time.monotonic()
    started = cco.post("/api/v1/detection-runs/", json={})
    assert (started.status_code, started.json()["status"]) == (202, "pending")

    def finished() -> dict | None:
        body = cco.get(f"/api/v1/detection-runs/{started.json()['id']}/").json()
        return body if body["status"] in ("succeeded", "failed") else None

    run = wait_until(finished, 120, "the detection run on the worker")
    seconds = time.monotonic() - began
    band = (
        "a target-band KPI has no better direction to correlate (its declared links "
        "still raise conflicts)"
    )
    quarterly = "only 11 quarter-over-quarter changes; at least 12 are needed"
    assert run["status"] == "succeeded", run
    assert (run["untested_kpis"], run["untested"]) == (
        4,
        [
            {"kpi": "finance.opex_variance_pct", "reason": band},
            {"kpi": "marketing.brand_awareness_pct", "reason": quarterly},
            {"kpi": "operations.inventory_days", "reason": band},
            {"kpi": "support.nps", "reason": quarterly},
        ],
    )
    deployment.note(
        "7",
        "bulk value 1e200; POST detection-runs/ (cco), polled",
        f"{huge.status_code}; run {run['status']}",
        f"{run['tests']:,} tests, untested {run['untested_kpis']} KPIs with "
        f"reasons, {run['new_conflicts']} new conflicts; run {seconds:.1f} s",
    )

    # 12: the alert mails (consolemail://: in the worker's log) name the conflict on
    # one line, and no line of them starts with the injected header.
    def mailed() -> str | None:
        text = deployment.worker.log_path.read_text(errors="replace")
        # The subject is RFC 2047-encoded (it holds an arrow); the body is plain text.
        return (
            text
            if "evil@example.com" in text and "Open in ducttape: " in text
            else None
        )

    try:
        lines = wait_until(mailed, 30, "the alert mails").splitlines()
    except AssertionError as timeout:
        tail = deployment.worker.log_path.read_text(errors="replace")[-3000:]
        raise AssertionError(f"{timeout}; the worker's log ends:\n{tail}") from None
    quoted = [line for line in lines if "evil@example.com" in line]
    expected = (
        "A rise of 100 in Marketing Bcc: evil@example.com's <b>Leads</b> qualified "
        "in a month, beyond what the company-wide drivers explain, comes with a rise of "
    )
    assert quoted, "no alert mail names the Marketing conflict"
    assert all(line.startswith(expected) for line in quoted), quoted
    assert not [line for line in lines if line.lower().startswith("bcc:")]
    mails = sum(line.startswith("Subject:") for line in lines)
    deployment.note(
        "12",
        "silo name 'Marketing\\r\\nBcc: evil@...', KPI name '<b>Leads</b>\\nqualified'",
        "200 (stored); the mails show each on one line",
        f"{mails} alert mails (consolemail://), {len(quoted)} lines quote the names, "
        "0 lines start with 'Bcc:'",
    )


# --- 1: 1e155 to a mean KPI ----------------------------------------------------------


def test_point_01_an_upload_of_1e155_is_refused_and_every_page_and_rollup_works(
    deployment,
):
    assert deployment.query(
        "SELECT aggregation FROM metrics_kpi WHERE key = 'support.csat_pct'"
    ) == [("mean",)]
    upload = deployment.session("support_manager").upload(
        "support.csat_pct", "2026-11-01", 1e155
    )
    assert upload.status_code == 400
    assert upload.json() == {
        "errors": [{"index": 0, "field": "value", "message": too_large(1e155)}]
    }

    cco = deployment.logged_in("cco")
    # A conflict of the KPI that point 7 sent 1e200 to (its chart drew nan points).
    ((conflict,),) = deployment.query(
        "SELECT min(c.id) FROM conflicts_conflict c JOIN metrics_kpi k "
        "ON k.id = c.leader_kpi_id WHERE k.key = 'sales.deals_closed'"
    )
    pages = [
        f"/report/cycles/{deployment.ids['FY2026']}/",
        "/admin/goals/goal/",
        f"/admin/goals/goal/{deployment.ids['CSAT goal']}/change/",
        f"/report/conflicts/{conflict}/",
    ]
    answers = {page: cco.get(page) for page in pages}
    statuses = {page: answer.status_code for page, answer in answers.items()}
    assert statuses == dict.fromkeys(pages, 200)
    chart = answers[pages[-1]].text
    assert re.search(r"\b(nan|inf|infinity)\b", chart, re.IGNORECASE) is None
    rollup = deployment.rollup()
    assert rollup == "done"
    deployment.note(
        "1",
        "bulk support.csat_pct (mean) 2026-11-01 = 1e155 (support_manager)",
        f"{upload.status_code}; 4 pages {sorted(set(statuses.values()))}; "
        f"roll-up {rollup}",
        "cycle page, goal list, goal change, conflict page (no nan in its chart)",
    )


# --- 2: a guardrail baseline of the largest double -------------------------------------


def test_point_02_a_guardrail_baseline_of_1_8e308_is_refused_and_rollups_run(
    deployment,
):
    cco = deployment.session("cco")
    guardrails = "SELECT kpi_id, baseline, tolerance FROM goals_guardrail"
    before = deployment.query(guardrails)
    baseline = 1.7976931348623157e308
    response = cco.patch(
        f"/api/v1/shared-goals/{deployment.ids['Profitable growth']}/",
        json={
            "guardrails": [
                {"kpi": "support.csat_pct", "baseline": baseline, "tolerance": 2}
            ]
        },
    )
    assert response.status_code == 400
    assert response.json() == {"guardrails": {"0": {"baseline": [too_large(baseline)]}}}
    assert deployment.query(guardrails) == before
    # An ordinary measurement, then the roll-up (in the review every run failed here).
    ordinary = deployment.session("support_manager").upload(
        "support.csat_pct", "2026-10-01", 86.4
    )
    assert ordinary.status_code == 200
    rollup = deployment.rollup()
    assert rollup == "done"
    runs = cco.get("/api/v1/rollup-runs/").json()
    assert [run["status"] for run in runs["results"]] == ["done"] * runs["count"]
    deployment.note(
        "2",
        "PATCH shared goal: guardrail baseline 1.7976931348623157e308 (cco)",
        f"{response.status_code}; roll-up {rollup}",
        f"guardrail unchanged; {runs['count']} roll-up runs, all done",
    )


# --- 3: spreadsheet formulas --------------------------------------------------------


def starts_a_formula(cell: str) -> bool:
    """Whether a spreadsheet would run ``cell`` as a formula (a number would not)."""
    if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(cell)
        except ValueError:
            return True
    return False


def test_point_03_formulas_are_neutralized_in_the_figures_csv_and_the_admin_export(
    deployment,
):
    manager = deployment.session("support_manager")
    for key, body in {
        "support.csat_pct": {"name": HYPERLINK, "unit": "-2+3"},
        "support.first_response_hours": {"unit": "@SUM(1+1)"},
    }.items():
        assert manager.patch(f"/api/v1/kpis/{key}/", json=body).status_code == 200
    source = manager.upload("support.csat_pct", "2026-11-01", 86.5, source=CALC)
    assert (source.status_code, source.json()) == (200, {"created": 1, "updated": 0})

    figures = deployment.session("bi_reader").get("/api/v1/figures/?format=csv")
    assert figures.status_code == 200
    rows = list(csv.reader(io.StringIO(figures.text)))
    assert rows[0][:8] == [
        "period",
        "silo",
        "silo_name",
        "kpi",
        "kpi_name",
        "unit",
        "direction",
        "value",
    ]
    names_and_units: dict[str, set[tuple[str, str]]] = {}
    for row in rows[1:]:
        names_and_units.setdefault(row[3], set()).add((row[4], row[5]))
    assert names_and_units["support.csat_pct"] == {("'" + HYPERLINK, "'-2+3")}
    assert names_and_units["support.first_response_hours"] == {
        ("First response time", "'@SUM(1+1)")
    }
    # Numbers stay numbers: every value reads as one, negative ones included.
    negative = sum(float(row[7]) < 0 for row in rows[1:])
    assert negative > 0
    assert [cell for row in rows for cell in row if starts_a_formula(cell)] == []

    cco = deployment.logged_in("cco")
    export = cco.form(
        "/admin/metrics/measurement/export/",
        {
            "format": "0",
            "resource": "0",
            "measurementresource_kpi": "on",
            "measurementresource_period": "on",
            "measurementresource_value": "on",
            "measurementresource_source": "on",
        },
    )
    assert export.status_code == 200
    exported = list(csv.reader(io.StringIO(export.text)))
    assert exported[0] == ["kpi", "period", "value", "source"]
    assert ["support.csat_pct", "2026-11-01", "86.5", "'" + CALC] in exported
    assert [cell for row in exported for cell in row if starts_a_formula(cell)] == []
    deployment.note(
        "3",
        "KPI name =HYPERLINK(...), units -2+3 and @SUM(1+1) (PATCH, manager); "
        "source +cmd|' /C calc'!A0",
        "figures CSV and admin export: those cells start with '",
        f"figures CSV {len(rows) - 1:,} rows ({negative} negative values stay "
        f"numbers), admin export {len(exported) - 1:,} rows: 0 formula cells",
    )


# --- 5: a 20,000-row admin import preview -------------------------------------------


def import_periods() -> list[str]:
    """The file's months, the last the demo's last: 1693-07-01 to 2026-10-01."""
    last = IMPORT_LAST_MONTH[0] * 12 + IMPORT_LAST_MONTH[1] - 1
    return [
        f"{index // 12:04d}-{index % 12 + 1:02d}-01"
        for index in range(last - IMPORT_MONTHS + 1, last + 1)
    ]


def import_file() -> bytes:
    """The review's file: 20,000 rows, 5 KPIs x 4,000 months (860 KB: the demo's
    Support keys are longer than the review's)."""
    lines = ["kpi,period,value"]
    for key in SUPPORT_MONTHLY:
        lines.extend(f"{key},{period},{IMPORT_VALUE}" for period in import_periods())
    return ("\n".join(lines) + "\n").encode()


#: The (KPI, period) a pipeline writes while the preview runs: the file holds it too.
OVERLAPPING = ("support.csat_pct", "2026-01-01")


def warm_up_uploads(deployment: Deployment) -> None:
    """Send accepted uploads, each on a new connection, until both gunicorn workers
    have served one (the access log names the worker's pid).

    The first upload a fresh worker process serves also opens its connections (the
    database for that thread, Redis for the roll-up it asks for) and imports what it
    had not needed yet: up to a second on this machine, a cost that has nothing to do
    with the import preview the next step measures against.
    """
    served = re.compile(r'"POST /api/v1/measurements/bulk/ [^"]*" 200 .* pid<(\d+)>')

    def pids() -> set[str]:
        text = deployment.logs["gunicorn access"].read_text(errors="replace")
        return set(served.findall(text))

    for attempt in range(20):
        with deployment.session("support_manager") as session:
            session.headers["Connection"] = "close"
            assert session.upload(*OVERLAPPING, 87.0 + attempt % 2).status_code == 200
        if len(pids()) == 2:
            return
    raise AssertionError(f"20 uploads reached only the gunicorn workers {pids()}")


def test_point_05_a_20000_row_import_preview_is_quick_small_and_blocks_no_upload(
    deployment,
):
    content = import_file()
    admin = deployment.logged_in("support_manager")
    assert admin.get("/admin/metrics/measurement/import/").status_code == 200
    began = time.monotonic()
    upload = admin.form(
        "/admin/metrics/measurement/import/",
        {},
        files={"import_file": ("support.csv", content, "text/csv")},
    )
    upload_seconds = time.monotonic() - began
    assert upload.status_code == 302, upload.text[:2000]
    preview_path = upload.headers["Location"]
    assert re.fullmatch(r"/admin/metrics/measurement/import/\d+/", preview_path)
    periods = import_periods()
    ((stored,),) = deployment.query(
        "SELECT count(*) FROM metrics_measurement m JOIN metrics_kpi k "
        "ON k.id = m.kpi_id WHERE k.key = ANY(%s) AND m.period BETWEEN %s AND %s",
        SUPPORT_MONTHLY,
        periods[0],
        periods[-1],
    )
    pipeline = deployment.session("support_manager")
    warm_up_uploads(deployment)

    # While the preview runs, another client (a pipeline) uploads to a (KPI, period)
    # the file also holds, again and again until the preview has answered; and a
    # third watches PostgreSQL for any session waiting for a lock meanwhile.
    preview: dict[str, Any] = {}
    lock_waits: list[int] = []

    reading = threading.Event()

    def read_preview() -> None:
        reading.set()
        preview["sent"] = time.monotonic()
        preview["response"] = admin.get(preview_path)
        preview["answered"] = time.monotonic()

    def watch_locks() -> None:
        with psycopg.connect(deployment.database_url, autocommit=True) as watcher:
            while reader.is_alive():
                lock_waits.append(
                    watcher.execute(
                        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
                        "ON a.pid = l.pid WHERE NOT l.granted "
                        "AND a.datname = current_database()"
                    ).fetchone()[0]
                )
                time.sleep(0.02)

    uploads: list[tuple[float, float, int]] = []
    reader = threading.Thread(target=read_preview)
    watcher = threading.Thread(target=watch_locks)
    reader.start()
    watcher.start()
    assert reading.wait(timeout=30)
    while reader.is_alive() and len(uploads) < 100:
        sent = time.monotonic()
        status = pipeline.upload(*OVERLAPPING, 87.0 + len(uploads) % 2).status_code
        uploads.append((sent, time.monotonic(), status))
    reader.join(timeout=60)
    watcher.join(timeout=10)
    response = preview["response"]
    preview_seconds = preview["answered"] - preview["sent"]
    during = [
        finished - sent
        for sent, finished, _ in uploads
        if preview["sent"] < sent and finished < preview["answered"]
    ]

    assert response.status_code == 200
    page = response.text
    assert "<li><strong>20,000</strong> rows</li>" in page
    assert f"<li><strong>{20_000 - stored:,}</strong> new</li>" in page
    assert f"<li><strong>{stored:,}</strong> changed</li>" in page
    assert "<li><strong>0</strong> problems</li>" in page
    assert page.count('data-label="Line"') == 100
    assert f"and {20_000 - 100:,} more rows" in page
    assert len(response.content) < 200_000
    assert preview_seconds < 5
    assert {status for _, _, status in uploads} == {200}
    assert during, "no upload ran while the preview did: the preview was too quick"
    assert max(during) < 1
    assert lock_waits
    assert max(lock_waits) == 0
    deployment.note(
        "5",
        f"admin import, {len(content) / 1024:,.0f} KB, 20,000 rows (support_manager); "
        "bulk uploads to an overlapping row meanwhile",
        f"preview {response.status_code} in {preview_seconds:.2f} s "
        f"(upload {upload_seconds:.2f} s)",
        f"page {len(response.content) / 1024:,.0f} KB, 100 rows shown; "
        f"{len(during)} uploads during it, slowest {max(during) * 1000:.0f} ms; "
        f"0 lock waits in {len(lock_waits)} looks at pg_locks",
    )


# --- 6: unbounded text ------------------------------------------------------------------


def test_point_06_megabytes_of_text_are_refused_and_the_kpi_list_stays_small(
    deployment,
):
    manager = deployment.session("support_manager")
    before = manager.get("/api/v1/kpis/")
    history = "SELECT count(*) FROM metrics_historicalkpi"
    history_rows = deployment.query(history)
    descriptions = [
        manager.patch(
            "/api/v1/kpis/support.csat_pct/", json={"description": "x" * 8_000_000}
        )
        for _ in range(3)
    ]
    notes = manager.patch(
        f"/api/v1/goals/{deployment.ids['CSAT goal']}/",
        json={"notes": "n" * 9_000_000},
    )
    after = manager.get("/api/v1/kpis/")

    assert [(d.status_code, d.json()) for d in descriptions] == [
        (400, {"description": [TEXT_LIMIT]})
    ] * 3
    assert (notes.status_code, notes.json()) == (400, {"notes": [TEXT_LIMIT]})
    assert deployment.query(history) == history_rows
    assert after.status_code == 200
    assert after.content == before.content
    assert len(after.content) < 100_000
    deployment.note(
        "6",
        "PATCH KPI description 8 MB x 3; goal notes 9 MB (support_manager)",
        f"{[d.status_code for d in descriptions]}; {notes.status_code}",
        f"kpis/ {len(after.content) / 1024:.1f} KB, unchanged; "
        f"{history_rows[0][0]} KPI history rows, unchanged",
    )


# --- 8: Content-Security-Policy and Permissions-Policy ----------------------------------


def test_point_08_every_kind_of_page_sends_both_policies(deployment):
    browser = deployment.logged_in("cco")
    anonymous = deployment.session()
    pages = {
        "report page": browser.get("/report/conflicts/"),
        "admin login": anonymous.get("/admin/login/"),
        "browsable API": browser.get("/api/v1/kpis/", headers={"Accept": "text/html"}),
        "API docs": anonymous.get("/api/docs/"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        assert response.headers["Content-Type"].startswith("text/html"), name
        csp = csp_directives(response.headers["Content-Security-Policy"])
        assert csp == EXPECTED_CSP, name
        assert response.headers["Permissions-Policy"] == EXPECTED_PERMISSIONS_POLICY
    deployment.note(
        "8",
        "GET a report page, /admin/login/, the browsable API, /api/docs/",
        "200, both headers on all 4",
        f"CSP of {len(EXPECTED_CSP)} directives; Permissions-Policy: "
        f"{EXPECTED_PERMISSIONS_POLICY.count('=()')} features off",
    )


# --- 9: a form in UTF-32 ----------------------------------------------------------------


def test_point_09_a_utf32_form_gets_400(deployment):
    paths = ["/admin/login/", "/report/conflicts/"]
    answers = []
    for path in paths:
        secret = secrets.token_hex(16)  # a CSRF secret: 32 alphanumeric characters
        answers.append(
            deployment.session().post(
                path,
                data=f"csrfmiddlewaretoken={secret}&username=x",
                headers={
                    "Content-Type": "application/x-www-form-urlencoded; charset=utf-32"
                },
                cookies={"csrftoken": secret},
                allow_redirects=False,
            )
        )
    assert [(answer.status_code, answer.text) for answer in answers] == [
        (400, URLENCODED_ONLY_UTF8)
    ] * len(paths)
    deployment.note(
        "9",
        "POST a form with charset=utf-32 to /admin/login/ and /report/conflicts/",
        f"{[answer.status_code for answer in answers]}, with a one-line message",
    )


# --- 10: boolean filters --------------------------------------------------------------


def test_point_10_boolean_filters_read_0_and_refuse_maybe(deployment):
    retired = deployment.session("sales_manager").patch(
        "/api/v1/kpis/sales.pipeline_value/", json={"is_active": False}
    )
    assert retired.status_code == 200
    reader = deployment.session("bi_reader")

    def listed(**filters: str) -> tuple[int, list[str]]:
        response = reader.get("/api/v1/kpis/", params={**filters, "limit": 1000})
        return response.status_code, [row["key"] for row in response.json()["results"]]

    _, every = listed()
    inactive = listed(is_active="0")
    active = listed(is_active="1")
    maybe = reader.get("/api/v1/kpis/", params={"is_active": "maybe"})

    assert inactive == (200, ["sales.pipeline_value"])
    assert active == (200, [key for key in every if key != "sales.pipeline_value"])
    assert maybe.status_code == 400
    assert maybe.json() == {
        "is_active": [
            "Use true or false (also accepted: 1/0, yes/no, on/off); got 'maybe'."
        ]
    }
    deployment.note(
        "10",
        "GET kpis/?is_active=0, =1, =maybe (after one KPI was retired)",
        f"{inactive[0]}, {active[0]}, {maybe.status_code}",
        f"0: the 1 inactive KPI only; 1: {len(active[1])} of {len(every)}",
    )


# --- 11: simultaneous sign-offs ---------------------------------------------------------


def test_point_11_four_simultaneous_sign_offs_record_exactly_one(deployment):
    cycle = deployment.ids["FY2026"]
    # The demo's Sales has signed FY2026 off already: take it back first.
    withdrawn = deployment.session("sales_manager").delete(
        f"/api/v1/cycles/{cycle}/sign-offs/sales/"
    )
    assert withdrawn.status_code == 204
    barrier = threading.Barrier(4)
    answers: list[requests.Response] = []

    def sign() -> None:
        session = deployment.session("sales_manager")
        barrier.wait(timeout=10)
        answers.append(
            session.post(f"/api/v1/cycles/{cycle}/sign-offs/", json={"silo": "sales"})
        )

    threads = [threading.Thread(target=sign) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 400, 400, 400]
    refused = [answer.json() for answer in answers if answer.status_code == 400]
    assert refused == [{"silo": ["Sales has already signed off FY2026."]}] * 3
    assert deployment.query(
        "SELECT count(*) FROM planning_signoff s JOIN metrics_silo o "
        "ON o.id = s.silo_id WHERE o.slug = 'sales' AND s.cycle_id = %s",
        cycle,
    ) == [(1,)]
    deployment.note(
        "11",
        "4 x POST cycles/<FY2026>/sign-offs/ {silo: sales} at once (after a DELETE)",
        f"{statuses}",
        "1 sign-off stored",
    )


# --- 13: a login with an unsafe next ----------------------------------------------------


def test_point_13_a_login_with_an_unsafe_next_lands_on_the_roles_start_page(
    deployment,
):
    # Every role starts at its home.
    expected = {"cco": "/", "sales_manager": "/", "bi_reader": "/"}
    landed = {}
    for username, start in expected.items():
        session, login = deployment.log_in(username, next_="https://evil.example/")
        assert (login.status_code, login.headers["Location"]) == (302, "/start/")
        followed = session.get("/start/")
        assert followed.status_code == 200
        assert [step.headers["Location"] for step in followed.history] == [start]
        landed[username] = urlsplit(followed.url).path
    assert landed == expected
    deployment.note(
        "13",
        "log in with next=https://evil.example/ (cco, sales_manager, bi_reader)",
        "302 to /start/, 302 to the role's page, 200",
        ", ".join(f"{user} -> {path}" for user, path in landed.items()),
    )


# --- 4: forty wrong passwords (last: it locks support_manager out here) ---------------


def test_point_04_forty_wrong_passwords_lock_the_login_out(deployment):
    session = deployment.session()
    assert session.get("/admin/login/").status_code == 200
    began = time.monotonic()
    statuses = [
        session.form(
            "/admin/login/", {"username": "support_manager", "password": WRONG}
        ).status_code
        for _ in range(40)
    ]
    seconds = time.monotonic() - began
    right = session.form(
        "/admin/login/", {"username": "support_manager", "password": PASSWORD}
    )

    assert statuses == [200] * 9 + [429] * 31
    assert (right.status_code, right.headers["Retry-After"]) == (429, "1800")
    assert LOCKED_TITLE in right.text
    assert "sessionid" not in session.cookies
    deployment.note(
        "4",
        "40 wrong passwords for support_manager, then the right one",
        f"9 x 200, 31 x 429; the right one {right.status_code} "
        f"(Retry-After {right.headers['Retry-After']})",
        f"40 attempts in {seconds:.1f} s; the lockout page",
    )


# --- 0 server errors ----------------------------------------------------------------


#: The status in an access line: right after the request line.
ACCESS_STATUS = re.compile(r'HTTP/[0-9.]+" (\d{3}) ')


def test_the_replay_caused_no_server_error(deployment):
    deployment.note(
        "14",
        "PostgreSQL stopped under the deployment",
        "not replayed here",
        "tests/test_faults.py::test_while_postgresql_is_down_..._recovers",
    )
    statuses = [answer.status for answer in deployment.answers]
    access = deployment.logs["gunicorn access"].read_text(errors="replace")
    access_statuses = [int(m.group(1)) for m in ACCESS_STATUS.finditer(access)]
    texts = {
        name: path.read_text(errors="replace") for name, path in deployment.logs.items()
    }
    problems = {
        name: [
            line
            for line in text.splitlines()
            if "Traceback" in line
            or "Internal Server Error" in line
            or "raised unexpected" in line
            or "ERROR/" in line  # Celery's error lines
            or "[ERROR]" in line  # gunicorn's
            or "[CRITICAL]" in line
            or "WORKER TIMEOUT" in line
        ]
        for name, text in texts.items()
    }
    slowest = max(deployment.answers, key=lambda answer: answer.seconds)

    print_summary(deployment, statuses, access_statuses, slowest)
    assert [status for status in statuses if status >= 500] == []
    assert [status for status in access_statuses if status >= 500] == []
    # Every access line was read (a byte count of 500 is not a status of 500).
    assert len(access_statuses) == len(access.splitlines())
    assert problems == {name: [] for name in texts}
    # Every answer the replay got is in the access log (none came from elsewhere).
    assert len(access_statuses) >= len(statuses)


def print_summary(
    deployment: Deployment,
    statuses: list[int],
    access_statuses: list[int],
    slowest: Answer,
) -> None:
    counts: dict[int, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    rows = sorted(deployment.results, key=lambda row: int(row[0]))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    print("\n\nThe review, replayed against a fresh deployment")
    for name, seconds in deployment.setup_seconds.items():
        print(f"  {name}: {seconds:.1f} s")
    print()
    for point, replayed, outcome, figures in rows:
        print(
            f"  {point:>{widths[0]}} | {replayed:<{widths[1]}} | "
            f"{outcome:<{widths[2]}} | {figures}"
        )
    print(
        f"\n  {len(statuses)} answers: "
        + ", ".join(f"{count} x {status}" for status, count in sorted(counts.items()))
        + f"; 5xx: {sum(status >= 500 for status in statuses)}; access log lines: "
        f"{len(access_statuses)}, 5xx: {sum(s >= 500 for s in access_statuses)}; "
        f"slowest {slowest.method} {slowest.path} {slowest.seconds:.2f} s"
    )
