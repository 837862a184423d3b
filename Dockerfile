# One image for web (gunicorn), the Celery worker, Celery beat and migrations;
# docker-compose.yml picks the process with `command`.
FROM python:3.11-slim

ARG UV_VERSION=0.13.9

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH="/opt/venv/bin:$PATH" \
    WEB_CONCURRENCY=2

RUN pip install --no-cache-dir "uv==${UV_VERSION}" \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/ducttape ducttape

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
# The virtualenv lives outside /app so a source bind mount cannot hide it.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project --no-cache

COPY . .

# Static files are part of the image. collectstatic needs settings to load, not a real
# secret: this throwaway key exists only during this build step.
RUN SECRET_KEY=collectstatic-only-build-time-key-not-used-at-runtime-0123456789 \
    DEBUG=false \
    python manage.py collectstatic --noinput

# The app runs unprivileged (uid 10001, created above) and cannot write to its own
# files; its home directory is writable (gunicorn keeps its control socket there).
USER 10001:10001

EXPOSE 8000

# config/gunicorn.conf.py: threaded workers (WEB_CONCURRENCY of them, default 2 above).
CMD ["gunicorn", "config.wsgi", "--config=config/gunicorn.conf.py"]
