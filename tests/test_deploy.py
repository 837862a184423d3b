"""Deployment files: settings' environment, check --deploy, Compose, Dockerfile, run.sh.

No Docker engine runs the suite, so docker-compose.yml is interpolated the way Compose
does it and validated against the official Compose Specification JSON schema, the copy
that check-jsonschema vendors (its ``vendor.compose-spec`` built-in schema).
"""

import ast
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
from copy import deepcopy
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

BASE_DIR = Path(__file__).resolve().parent.parent
SETTINGS_FILE = BASE_DIR / "config" / "settings" / "base.py"
ENV_EXAMPLE = BASE_DIR / ".env.example"
COMPOSE_FILE = BASE_DIR / "docker-compose.yml"
DOCKERFILE = BASE_DIR / "Dockerfile"
DOCKERIGNORE = BASE_DIR / ".dockerignore"
RUN_SCRIPT = BASE_DIR / "scripts" / "run.sh"

APP_IMAGE = "ducttape:local"
APP_SERVICES = ("migrate", "web", "worker", "beat")


def settings_environment_names() -> set[str]:
    """Return the names base.py reads through ``env(...)`` / ``env.<type>(...)``."""
    names = set()
    for node in ast.walk(ast.parse(SETTINGS_FILE.read_text())):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        function = node.func
        reads_env = (isinstance(function, ast.Name) and function.id == "env") or (
            isinstance(function, ast.Attribute)
            and isinstance(function.value, ast.Name)
            and function.value.id == "env"
        )
        first = node.args[0]
        if (
            reads_env
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
        ):
            names.add(first.value)
    return names


def env_example_names() -> list[str]:
    """Return the variables .env.example assigns, commented out or not, in order."""
    pattern = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=")
    return [
        match.group(1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if (match := pattern.match(line))
    ]


# --- settings and .env.example -------------------------------------------------------


def test_settings_reads_the_expected_variables():
    # Guards the parser below: if it found nothing, the next test would prove nothing.
    assert {
        "DEBUG",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "REDIS_URL",
        "EMAIL_URL",
        "STATIC_ROOT",
        "DATA_UPLOAD_MAX_MEMORY_SIZE",
    } <= settings_environment_names()


def test_env_example_lists_exactly_the_variables_settings_read():
    listed = env_example_names()

    assert len(listed) == len(set(listed)), "a variable is listed twice"
    assert set(listed) == settings_environment_names()


def test_env_example_explains_every_variable():
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^#?\s*[A-Z][A-Z0-9_]*=", line):
            assert index > 0
            assert lines[index - 1].startswith("#"), f"no comment above {line!r}"
            assert lines[index - 1].strip("# ") != ""


# --- manage.py check --deploy -----------------------------------------------------------


def run_deploy_check(**environment: str) -> subprocess.CompletedProcess[str]:
    """Run ``check --deploy`` in a fresh process with only the given settings variables."""
    process_environment = {
        name: value
        for name, value in os.environ.items()
        if name not in settings_environment_names()
    }
    process_environment["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    process_environment.update(environment)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=process_environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_passes_with_production_environment():
    result = run_deploy_check(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="ducttape.example.com",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/ducttape",
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in output
    assert "security." not in output


def test_check_deploy_fails_with_debug_and_default_key():
    result = run_deploy_check(
        DEBUG="1",
        ALLOWED_HOSTS="ducttape.example.com",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/ducttape",
    )

    assert result.returncode != 0
    assert "WARNINGS:" in result.stderr
    for warning in ("W004", "W008", "W009", "W012", "W016", "W018"):
        assert f"(security.{warning})" in result.stderr


# --- Celery without and with Redis ---------------------------------------------------------


def settings_process(
    script: str, **environment: str
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter whose settings come only from
    ``environment`` (the suite's own settings variables are left out)."""
    process_environment = {
        name: value
        for name, value in os.environ.items()
        if name not in settings_environment_names()
    }
    process_environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.base", **environment
    )
    return subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=process_environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def celery_settings(**environment: str) -> dict[str, Any]:
    """Return the Celery settings a fresh process resolves from ``environment``."""
    script = (
        "import json, django; django.setup(); from config import celery_app as app; "
        "print(json.dumps({'eager': app.conf.task_always_eager, "
        "'broker': app.conf.broker_url, 'acks_late': app.conf.task_acks_late}))"
    )
    result = settings_process(script, **environment)
    result.check_returncode()
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_redis_url_tasks_run_in_process():
    assert celery_settings() == {
        "eager": True,
        "broker": "memory://",
        "acks_late": True,
    }


def test_with_redis_url_tasks_go_to_redis():
    assert celery_settings(REDIS_URL="redis://127.0.0.1:6379/3") == {
        "eager": False,
        "broker": "redis://127.0.0.1:6379/3",
        "acks_late": True,
    }


# --- /healthz ----------------------------------------------------------------------------


def test_healthz_answers_ok_without_the_database(client):
    # No django_db mark: any database query here would fail the test.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_healthz_is_exempt_from_the_https_redirect(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/healthz").status_code == 200
    redirected = client.get("/admin/login/")
    assert redirected.status_code == 301
    assert redirected["Location"] == "https://testserver/admin/login/"


# --- docker-compose.yml ------------------------------------------------------------------

INTERPOLATION = re.compile(
    r"""\$(?:
        (?P<escaped>\$)
        | (?P<bare>[A-Za-z_][A-Za-z0-9_]*)
        | \{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?+])(?P<argument>[^}]*))?\}
    )""",
    re.VERBOSE,
)


class MissingVariableError(ValueError):
    pass


def interpolate(value: Any, environment: dict[str, str]) -> Any:
    """Substitute ``$NAME``/``${NAME...}`` in every string value, as Compose does."""
    if isinstance(value, dict):
        return {key: interpolate(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environment) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("bare") or match.group("braced")
        operator, argument = match.group("operator"), match.group("argument") or ""
        current = environment.get(name)
        is_set = current is not None
        is_set_non_empty = bool(current)
        if operator in (":-", "-"):
            use_default = not is_set_non_empty if operator == ":-" else not is_set
            return argument if use_default else current
        if operator in (":?", "?"):
            missing = not is_set_non_empty if operator == ":?" else not is_set
            if missing:
                raise MissingVariableError(f"{name}: {argument}")
            return current
        if operator in (":+", "+"):
            use_alternative = is_set_non_empty if operator == ":+" else is_set
            return argument if use_alternative else ""
        return current or ""

    return INTERPOLATION.sub(substitute, value)


def load_compose(environment: dict[str, str] | None = None) -> dict[str, Any]:
    """Return docker-compose.yml parsed and interpolated with ``environment``."""
    if environment is None:
        environment = {"SECRET_KEY": secrets.token_urlsafe(64)}
    return interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), environment)


def compose_schema_errors(document: dict[str, Any]) -> list[str]:
    """Return the Compose Specification schema's complaints about ``document``."""
    try:
        vendored = files("check_jsonschema.builtin_schemas.vendor")
    except ModuleNotFoundError:
        pytest.fail(
            "check-jsonschema (a dev dependency) ships the Compose Specification "
            "schema this test validates against: uv sync"
        )
    schema = json.loads((vendored / "compose-spec.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return [
        f"{error.json_path}: {error.message}"
        for error in validator_class(schema).iter_errors(document)
    ]


def command_words(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else command


def test_compose_file_is_valid_against_the_compose_specification():
    compose = load_compose()

    assert compose_schema_errors(compose) == []


@pytest.mark.parametrize(
    ("path", "bad_value"),
    [
        (("services", "web", "depends_on", "postgres", "condition"), "healthy"),
        (("services", "web", "ports"), "8000:8000"),
        (("services", "redis", "healthcheck", "interval_seconds"), 5),
        (("services", "worker", "restart_policy"), "always"),
    ],
)
def test_compose_schema_rejects_an_invalid_file(path, bad_value):
    compose = deepcopy(load_compose())
    target = compose
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad_value

    assert compose_schema_errors(compose) != []


def test_compose_requires_a_secret_key():
    with pytest.raises(MissingVariableError, match="SECRET_KEY"):
        load_compose({})
    with pytest.raises(MissingVariableError, match="SECRET_KEY"):
        load_compose({"SECRET_KEY": ""})


def test_compose_services_share_one_image_built_once():
    services = load_compose()["services"]

    assert set(services) == {"postgres", "redis", *APP_SERVICES}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    for name in APP_SERVICES:
        assert services[name]["image"] == APP_IMAGE, name
    assert [name for name, service in services.items() if "build" in service] == ["web"]
    assert services["web"]["build"]["context"] == "."


def test_compose_backing_services_have_healthchecks_and_storage():
    compose = load_compose()
    services = compose["services"]

    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "postgres-data" in compose["volumes"]


def test_compose_app_services_wait_for_healthy_backing_services():
    services = load_compose()["services"]

    for name in ("web", "worker"):
        depends_on = services[name]["depends_on"]
        assert depends_on["postgres"] == {"condition": "service_healthy"}, name
        assert depends_on["redis"] == {"condition": "service_healthy"}, name
        assert depends_on["migrate"] == {
            "condition": "service_completed_successfully"
        }, name
    assert services["beat"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"}
    }
    for service in services.values():
        for dependency in service.get("depends_on", {}):
            assert dependency in services


def test_compose_commands():
    services = load_compose()["services"]

    assert command_words(services["migrate"])[:3] == ["python", "manage.py", "migrate"]
    assert services["migrate"]["restart"] == "no"
    web = command_words(services["web"])
    assert web[:2] == ["gunicorn", "config.wsgi"]
    assert "--bind=0.0.0.0:8000" in web
    workers = [int(word.split("=")[1]) for word in web if word.startswith("--workers=")]
    assert workers
    assert workers[0] >= 2
    assert services["web"]["ports"] == ["8000:8000"]
    web_probe = services["web"]["healthcheck"]["test"]
    assert web_probe[:3] == ["CMD", "python", "-c"]
    compile(web_probe[3], "web healthcheck", "exec")
    assert "/healthz" in web_probe[3]
    assert command_words(services["worker"])[:4] == ["celery", "-A", "config", "worker"]
    assert "--loglevel=INFO" in command_words(services["worker"])
    assert command_words(services["beat"])[:4] == ["celery", "-A", "config", "beat"]


def test_compose_app_environment():
    services = load_compose(
        {"SECRET_KEY": "k" * 64, "ALLOWED_HOSTS": "ducttape.example.com"}
    )["services"]

    for name in APP_SERVICES:
        environment = services[name]["environment"]
        assert (
            environment["DATABASE_URL"]
            == "postgres://ducttape:ducttape@postgres:5432/ducttape"
        )
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert environment["DEBUG"] == "false"
        assert environment["SECRET_KEY"] == "k" * 64
        assert environment["ALLOWED_HOSTS"] == "ducttape.example.com"
        # Every variable handed to the app is one the settings read (no typos).
        assert set(environment) <= settings_environment_names(), name


def test_compose_passes_through_only_documented_variables():
    raw = COMPOSE_FILE.read_text()
    interpolated = {
        match.group("bare") or match.group("braced")
        for match in INTERPOLATION.finditer(raw)
        if not match.group("escaped")
    }

    assert "SECRET_KEY" in interpolated
    assert interpolated <= set(env_example_names())


# --- Dockerfile, .dockerignore, run.sh ---------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            instructions.append((keyword.upper(), " ".join(arguments.split())))
    return instructions


def test_dockerfile():
    instructions = dockerfile_instructions()
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]

    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert any(re.match(r"pip install .*\buv\b", run) for run in runs)
    assert any(run.startswith("uv sync --frozen --no-dev") for run in runs)
    collectstatic = [run for run in runs if "collectstatic --noinput" in run]
    assert len(collectstatic) == 1
    assert "SECRET_KEY=" in collectstatic[0]
    assert users
    assert users[-1] not in ("root", "0")
    assert ("EXPOSE", "8000") in instructions
    assert instructions[-1][0] == "CMD"
    assert json.loads(instructions[-1][1])[:2] == ["gunicorn", "config.wsgi"]


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = set(DOCKERIGNORE.read_text().splitlines())

    assert {".git", ".venv", ".env", "db.sqlite3", "staticfiles/"} <= ignored


def test_run_script_is_valid_bash():
    result = subprocess.run(  # noqa: S603
        ["bash", "-n", str(RUN_SCRIPT)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    text = RUN_SCRIPT.read_text()
    assert "set -euo pipefail" in text
    assert "sync --frozen" in text
    assert "manage.py migrate" in text
    assert "manage.py seed_demo" in text
    assert "runserver" in text


# --- Celery's reliability settings (issue: prove it holds) --------------------------------


def resolved_celery(**environment: str) -> dict[str, Any]:
    """Return the reliability settings of the Celery app a fresh process builds."""
    script = (
        "import json, django; django.setup(); from config.celery_app import app; c = app.conf; "
        "print(json.dumps({'acks_late': c.task_acks_late, "
        "'reject_on_worker_lost': c.task_reject_on_worker_lost, "
        "'prefetch': c.worker_prefetch_multiplier, 'time_limit': c.task_time_limit, "
        "'soft_time_limit': c.task_soft_time_limit, "
        "'broker_visibility': c.broker_transport_options['visibility_timeout'], "
        "'result_visibility': c.result_backend_transport_options['visibility_timeout'], "
        "'visibility': c.visibility_timeout, "
        "'beat': {name: [entry['task'], entry.get('options', {}).get('expires')] "
        "for name, entry in c.beat_schedule.items()}}))"
    )
    result = settings_process(
        script, **{"REDIS_URL": "redis://127.0.0.1:6379/3", **environment}
    )
    if result.returncode:
        return {"error": result.stderr.strip().splitlines()[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_celery_is_set_for_long_jobs_that_survive_a_lost_worker():
    conf = resolved_celery()

    assert conf == {
        # A task is acknowledged after it ran, and given back if its worker dies.
        "acks_late": True,
        "reject_on_worker_lost": True,
        # A long job does not hold messages other workers could take.
        "prefetch": 1,
        "time_limit": 1800,
        "soft_time_limit": 1740,
        # The same visibility timeout everywhere, above the time limits.
        "broker_visibility": 3600,
        "result_visibility": 3600,
        "visibility": 3600,
        # Every periodic task expires before its next run could pile onto it.
        "beat": {
            "nightly-conflict-detection": ["conflicts.nightly_detection", 3600],
            "nightly-shared-goal-rollup": ["goals.rollup_shared_goals", 3600],
            "shared-goal-rollup-catch-up": ["goals.rollup_catch_up", 540],
            "notification-deliveries-resume": ["notifications.resume", 240],
            "weekly-digest": ["notifications.weekly_digest", 3600],
        },
    }


def test_short_time_limits_keep_a_positive_soft_limit():
    conf = resolved_celery(CELERY_TASK_TIME_LIMIT="20", CELERY_VISIBILITY_TIMEOUT="30")

    assert (conf["time_limit"], conf["soft_time_limit"], conf["visibility"]) == (
        20,
        18,
        30,
    )


def test_a_visibility_timeout_below_the_time_limit_is_refused():
    conf = resolved_celery(
        CELERY_TASK_TIME_LIMIT="600", CELERY_VISIBILITY_TIMEOUT="600"
    )

    assert conf == {
        "error": "django.core.exceptions.ImproperlyConfigured: CELERY_VISIBILITY_TIMEOUT "
        "must be above CELERY_TASK_TIME_LIMIT: Redis would hand a task still running to "
        "a second worker."
    }


# --- make run's default database ---------------------------------------------------------


def test_make_runs_steps_work_on_its_default_sqlite_database(tmp_path):
    """`make run` defaults to SQLite: its steps (migrate, demo data, detection with the
    alert mails, the roll-up, the weekly digest) must not lean on PostgreSQL-only
    lookups (JSON containment, DISTINCT ON)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in settings_environment_names()
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        EMAIL_URL="consolemail://",
    )

    def manage(*arguments: str) -> str:
        result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
            [sys.executable, "manage.py", *arguments],
            cwd=BASE_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    manage("migrate", "--noinput", "-v", "0")
    manage("seed_demo")
    detected = manage("detect_conflicts")
    rolled = manage("rollup_goals")
    digest = manage(
        "shell",
        "--no-imports",
        "-c",
        "from notifications.digest import digest_send; print(digest_send().title)",
    )

    # The migrated channel mails each high-severity conflict (console backend).
    assert detected.count("Subject:") >= 1
    assert "Open in ducttape: http://127.0.0.1:8000/report/conflicts/" in detected
    assert rolled.rstrip().endswith("done.")
    assert digest.startswith("Weekly digest, 20"), digest
