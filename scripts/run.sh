#!/usr/bin/env bash
# Set up and run ducttape with demo data on http://127.0.0.1:8000 .
#
# Needs only Python 3.11+ (and bash). Installs uv into .tools/ if it is not on PATH,
# installs the locked dependencies into .venv/, migrates, loads the demo data, and serves
# with Django's development server. Defaults: SQLite, DEBUG on, Celery tasks run
# in-process. Set REDIS_URL (in the environment or .env) to also run a Celery worker and
# beat; they stop when the server stops. Settings come from the environment and .env,
# see .env.example.
#
#   bash scripts/run.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

HOST=127.0.0.1
PORT=8000

log() { printf '==> %s\n' "$*"; }

# Whether .env assigns NAME (the settings read .env; the environment wins over it).
dotenv_sets() { [[ -f .env ]] && grep -Eq "^[[:space:]]*(export[[:space:]]+)?$1=" .env; }

# --- uv ---------------------------------------------------------------------------
if command -v uv >/dev/null 2>&1; then
  UV=(uv)
else
  if [[ ! -x .tools/bin/uv ]]; then
    PYTHON=${PYTHON:-python3}
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "error: ducttape needs Python 3.11 or newer as '$PYTHON' (set PYTHON=...)" >&2
      exit 1
    fi
    log "Installing uv into .tools/"
    "$PYTHON" -m venv .tools
    .tools/bin/pip install --quiet --disable-pip-version-check uv
  fi
  UV=(.tools/bin/uv)
fi

# --- dependencies -----------------------------------------------------------------
log "Installing dependencies into .venv/ (uv sync --frozen)"
"${UV[@]}" sync --frozen
VENV=${UV_PROJECT_ENVIRONMENT:-.venv}
PY=("$VENV/bin/python")

# --- settings defaults for a laptop -----------------------------------------------
# DEBUG on unless the environment or .env says otherwise; no DATABASE_URL means SQLite,
# no REDIS_URL means eager Celery (the settings' own defaults).
if [[ -z ${DEBUG+set} ]] && ! dotenv_sets DEBUG; then
  export DEBUG=1
fi
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.base}

# Ask the settings what they resolved (environment plus .env), once.
read -r SETTINGS_DEBUG SETTINGS_REDIS_URL < <(
  "${PY[@]}" -c '
import django
from django.conf import settings

django.setup()
print(int(settings.DEBUG), settings.REDIS_URL or "-")
'
)
[[ $SETTINGS_REDIS_URL == "-" ]] && SETTINGS_REDIS_URL=""

# --- database, demo data, static files --------------------------------------------
log "Migrating the database"
"${PY[@]}" manage.py migrate --noinput

log "Loading demo data (seed_demo)"
"${PY[@]}" manage.py seed_demo

log "Detecting conflicts in the demo data (detect_conflicts)"
"${PY[@]}" manage.py detect_conflicts --verbosity 0

log "Rolling up the shared goals (rollup_goals)"
"${PY[@]}" manage.py rollup_goals

if [[ $SETTINGS_DEBUG == 0 ]]; then
  # Without DEBUG the development server serves static files only through WhiteNoise,
  # from STATIC_ROOT.
  log "Collecting static files"
  "${PY[@]}" manage.py collectstatic --noinput --verbosity 0
fi

print_urls() {
  cat <<EOF

ducttape is running:
  App:    http://$HOST:$PORT/
  Admin:  http://$HOST:$PORT/admin/   (demo logins: see the seed_demo output above)
  Conflict report (CCO team): http://$HOST:$PORT/report/conflicts/
  Planning cycles:            http://$HOST:$PORT/report/cycles/
  API docs:                   http://$HOST:$PORT/api/docs/
  Health: http://$HOST:$PORT/healthz
Press Ctrl-C to stop.

EOF
}

SERVER=("${PY[@]}" manage.py runserver "$HOST:$PORT")

# --- without Redis: the server alone ----------------------------------------------
if [[ -z $SETTINGS_REDIS_URL ]]; then
  log "No REDIS_URL: Celery tasks run in-process"
  print_urls
  exec "${SERVER[@]}"
fi

# --- with Redis: worker and beat beside the server --------------------------------
PIDS=()
BEAT_STATE=$(mktemp -d "${TMPDIR:-/tmp}/ducttape-beat.XXXXXX")

stop_all() {
  trap - EXIT INT TERM
  # If stdout is a pipe whose reader is gone (e.g. `| tee` hit by the same Ctrl-C),
  # a failed write must not end the script before it stops the others.
  trap '' PIPE
  log "Stopping" 2>/dev/null || true
  local pid
  # Each process leads its own process group: signal the group, so that children
  # (the autoreloader's server, the worker's pool processes) stop too.
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$BEAT_STATE"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Job control on only while starting them: each background job gets its own process
# group, while the script keeps the terminal (Ctrl-C reaches the script's trap).
start() {
  set -m
  "$@" &
  PIDS+=("$!")
  set +m
}

log "REDIS_URL is set: starting a Celery worker and beat"
start "${PY[@]}" -m celery -A config worker --loglevel=INFO
start "${PY[@]}" -m celery -A config beat --loglevel=INFO \
  --schedule="$BEAT_STATE/celerybeat-schedule"

print_urls
start "${SERVER[@]}"

# Return when any of the three stops (or on Ctrl-C); the EXIT trap stops the others.
# (A polling loop rather than `wait -n`, which macOS's bash 3.2 lacks.)
while :; do
  for pid in "${PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      status=0
      wait "$pid" || status=$?
      log "Process $pid exited with status $status"
      exit "$status"
    fi
  done
  sleep 1
done
