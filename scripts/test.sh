#!/usr/bin/env bash
# Set up and run the whole test suite against PostgreSQL and Redis on loopback.
#
#   DATABASE_URL  default postgres://postgres@127.0.0.1:5432/ducttape
#                 (pytest-django creates and drops its own test_<name> database)
#   REDIS_URL     default redis://127.0.0.1:6379/15
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k admin -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v uv >/dev/null 2>&1; then
  UV=uv
else
  # A fresh machine has only Python: put uv in a private tools venv.
  [ -x .tools/bin/uv ] || { python3 -m venv .tools && .tools/bin/pip install -q uv; }
  UV=.tools/bin/uv
fi
"$UV" sync --frozen --quiet

# The real-browser tests drive Debian's Chromium (Playwright cannot download one here).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium for the browser tests..."
    # Another process (unattended upgrades) may hold the dpkg lock: wait for it, bounded.
    (apt-get -o DPkg::Lock::Timeout=300 update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
        install -y -qq chromium) >/dev/null
  else
    echo "The browser tests need /usr/bin/chromium: sudo apt-get install chromium" >&2
    exit 1
  fi
fi

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ducttape}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/15}"
export DJANGO_SETTINGS_MODULE=config.settings.test

# The check compares models with migration files; an in-memory database keeps it from
# looking for (and warning about) the real one, which pytest creates itself.
DATABASE_URL=sqlite:///:memory: "$UV" run python manage.py makemigrations --check --dry-run >/dev/null \
  || { echo "Models have changes without a migration: run manage.py makemigrations" >&2; exit 1; }
exec "$UV" run pytest "$@"
