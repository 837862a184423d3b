"""gunicorn settings for the web service (the Dockerfile, docker-compose, benchmarks).

Threaded workers, not sync ones: a sync worker busy streaming a large CSV export cannot
report to gunicorn's arbiter and is killed at ``timeout``, cutting the download short;
a gthread worker's main loop keeps reporting while one of its threads streams.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 60
graceful_timeout = 30
accesslog = "-"
