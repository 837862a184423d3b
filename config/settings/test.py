"""Test settings: only what makes the suite faster or deterministic.

The database and Redis come from DATABASE_URL / REDIS_URL like everywhere else; the
test command points them at the local PostgreSQL and Redis.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import REST_FRAMEWORK, STORAGES

# A fast hasher: the suite creates many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The suite makes thousands of API calls per user; the throttle test sets its own rate.
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": "1000000/min"}}
# Tasks run in-process unless a test starts a real worker (tests/conflicts/test_celery.py
# turns this off for its worker): nothing is left queued in Redis between tests.
CELERY_TASK_ALWAYS_EAGER = True
# The tests' webhook receivers listen on loopback; retries wait fractions of a second.
NOTIFICATIONS_ALLOW_PRIVATE_URLS = True
NOTIFICATIONS_RETRY_BASE_SECONDS = 0.2
NOTIFICATIONS_RETRY_MAX_SECONDS = 1.0
