"""Settings for every environment.

Production differs from development only through environment variables; each one is
listed in ``.env.example``. With no ``DATABASE_URL`` the service uses an SQLite file, and
with no ``REDIS_URL`` Celery tasks run in-process, so a laptop needs nothing but Python.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_HASHES, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str(
    "SECRET_KEY",
    # A development-only key: production must set SECRET_KEY (check --deploy flags this).
    default="django-insecure-dev-only-ducttape-key-change-me",
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "import_export",
    "axes",
    "csp",
    "metrics",
    "notifications",
    "cycles",
    "goals",
    "home",
    "planning",
    "conflicts",
    # After axes: core.admin replaces axes' admin classes (who may unlock logins).
    "core",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Early, so that every response (a 400, a lockout page, a static file) has both.
    "csp.middleware.CSPMiddleware",
    "core.middleware.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything that reads request.POST (sessions, CSRF, axes): a form body in a
    # charset Django cannot read gets a 400 here instead of a 500 escaping the handler.
    "core.middleware.FormEncodingMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Records the acting user on every history row written during a request.
    "simple_history.middleware.HistoryRequestMiddleware",
    # A view that fails because PostgreSQL is down answers 503 with Retry-After, not
    # 500 (it acts in process_exception, so its place in the list does not matter).
    "core.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable server (host down, packets dropped) fails the connection attempt
    # after this many seconds and the request answers 503, instead of waiting for
    # psycopg's 130 s default. A connect_timeout in DATABASE_URL takes precedence.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "admin:login"
# Where a login goes without a safe ``next``: /start/ sends each role to its first page
# (config.urls.start). Django's default, /accounts/profile/, does not exist here.
LOGIN_REDIRECT_URL = "start"

# Login lockout (django-axes): failed logins are counted per username *and* client
# address, and the pair is refused for a cool-off once it reaches the limit. Not per
# username alone: anyone who knows a username could then lock its owner out from
# anywhere. Not per address alone: everyone behind one office NAT or VPN would be
# locked out together. See README, "Login lockout".
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out pair before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=30))
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME.total_seconds() < 60:
    raise ImproperlyConfigured(
        "LOGIN_FAILURE_LIMIT and LOGIN_COOLOFF_MINUTES must be at least 1: a lockout "
        "without a limit or a cool-off never locks, or never ends."
    )
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# A successful login forgets that pair's earlier failures (someone who mistyped twice
# starts afresh); it cannot clear another user's or another address's count.
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "core.lockout.lockout_response"
# gunicorn's REMOTE_ADDR is the proxy's address behind a reverse proxy. python-ipware
# (which AXES_IPWARE_* settings configure) is not installed, so the client address
# comes from this function, reading X-Forwarded-For right to left past
# TRUSTED_PROXY_COUNT proxies (0: no proxy, the header is ignored).
AXES_CLIENT_IP_CALLABLE = "core.lockout.client_ip_address"
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Keep a record of every failure, also after its attempt is unlocked or expires.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# Besides superusers, who may see and lift lockouts in the admin (core.admin).
LOCKOUT_ADMIN_GROUPS = ["CCO team"]

# Security: strict by default, relaxed only when DEBUG is on (local development).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp 4): everything the pages load is served by this
# site (no CDN; Swagger UI comes from drf-spectacular-sidecar). No inline script runs:
# the API docs load their init script from a URL (SpectacularSwaggerSplitView), and the
# only inline handler, django-import-export's "select all" box on the export form
# (onchange="onSelectToggleChange(event)"), is allowed by its hash alone. Styles allow
# 'unsafe-inline': the report and cycle pages set style attributes (some from data,
# the heatmap's shades), which only 'unsafe-inline' permits; scripts, where an
# injection would run, do not. data: images are Swagger UI's icons.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [
            SELF,
            UNSAFE_HASHES,
            "'sha256-wid4zL8fR53ZYy1ljOepzR77Dn6vWUUxuNnnWWBP3I8='",
        ],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Permissions-Policy (core.middleware): no page uses any of these browser features.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# Email: console in development; SMTP in production through EMAIL_URL.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ducttape@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The public address of the site, for links in mail (there is no request to build them).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Django's default config gives "django" a console handler of its own; propagate to
    # the root handler only, or each line prints twice.
    "filters": {"refusals": {"()": "core.logging.RefusalsWithoutTraceback"}},
    "loggers": {
        "django": {"handlers": [], "propagate": True},
        "django.request": {"handlers": [], "filters": ["refusals"], "propagate": True},
    },
}

# The cache holds API throttle counters: shared through Redis when there is one, so
# every gunicorn worker counts the same requests.
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env.str("REDIS_URL", default=""),
        }
        if env.str("REDIS_URL", default="")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Celery. Without REDIS_URL tasks run in-process (eager), which keeps the
# single-command demo free of any service.
REDIS_URL = env.str("REDIS_URL", default="")
# Long jobs (detection, roll-ups) must finish well inside the visibility timeout,
# or Redis hands the same message to a second worker while the first still runs.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=1800)
# The soft limit raises inside the task first, so it can record its failure.
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - min(
    60, CELERY_TASK_TIME_LIMIT // 10
)
if CELERY_VISIBILITY_TIMEOUT <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT must be above CELERY_TASK_TIME_LIMIT: Redis would "
        "hand a task still running to a second worker."
    )
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # A lost worker's unacknowledged message comes back after the visibility timeout,
    # found by a sweep every few seconds (kombu's default: every 100 s at best).
    "unacked_restore_interval": max(1, min(60, CELERY_VISIBILITY_TIMEOUT // 4)),
    "unacked_restore_throttle": 1,
    # Never wait forever on a broker connection that vanished without closing.
    "socket_timeout": 30,
    "socket_connect_timeout": 5,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Seconds a burst of measurement uploads is given before the one roll-up it causes.
ROLLUP_COALESCE_SECONDS = 30

# Notifications (README, "Notifications"): retries double from the base up to the cap,
# at most NOTIFICATIONS_MAX_ATTEMPTS attempts in all.
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=6)
NOTIFICATIONS_RETRY_BASE_SECONDS = env.float(
    "NOTIFICATIONS_RETRY_BASE_SECONDS", default=30
)
NOTIFICATIONS_RETRY_MAX_SECONDS = env.float(
    "NOTIFICATIONS_RETRY_MAX_SECONDS", default=3600
)
NOTIFICATIONS_RESUME_AFTER_SECONDS = env.int(
    "NOTIFICATIONS_RESUME_AFTER_SECONDS", default=300
)
# Webhooks to private addresses (loopback, 10/8, ...) are refused unless this is set:
# an on-premises receiver, or the tests' receiver on loopback.
NOTIFICATIONS_ALLOW_PRIVATE_URLS = env.bool(
    "NOTIFICATIONS_ALLOW_PRIVATE_URLS", default=False
)
# The weekly digest: day of the week (crontab: "mon" or 1) and hour, in TIME_ZONE.
NOTIFICATIONS_DIGEST_DAY = env.str("NOTIFICATIONS_DIGEST_DAY", default="mon")
NOTIFICATIONS_DIGEST_HOUR = env.int("NOTIFICATIONS_DIGEST_HOUR", default=8)

CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Nightly, after the day's uploads; expires so that a backlog never runs stale
    # copies (the task also refuses to start a second run while one is under way).
    "nightly-conflict-detection": {
        "task": "conflicts.nightly_detection",
        "schedule": crontab(hour=2, minute=15),
        "options": {"expires": 3600},
    },
    "nightly-shared-goal-rollup": {
        "task": "goals.rollup_shared_goals",
        "schedule": crontab(hour=3, minute=0),
        "kwargs": {"reason": "schedule"},
        "options": {"expires": 3600},
    },
    # Runs the roll-up only if a contributing measurement changed since the last one:
    # catches up uploads whose roll-up could not be enqueued (Redis down).
    # Deliveries whose task was lost (broker down at enqueue, a worker died).
    "notification-deliveries-resume": {
        "task": "notifications.resume",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 240},
    },
    "weekly-digest": {
        "task": "notifications.weekly_digest",
        "schedule": crontab(
            day_of_week=NOTIFICATIONS_DIGEST_DAY,
            hour=NOTIFICATIONS_DIGEST_HOUR,
            minute=0,
        ),
        "options": {"expires": 3600},
    },
    "shared-goal-rollup-catch-up": {
        "task": "goals.rollup_catch_up",
        "schedule": crontab(minute="*/10"),
        "options": {"expires": 540},
    },
}

# Django REST framework: deny by default; each view opens only what its role allows.
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes anonymous requests a 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "core.api.permissions.RolePermission",
    ],
    "EXCEPTION_HANDLER": "core.api.exceptions.api_exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "core.api.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Per-user limits (BI tools poll; a runaway script should get a 429 with
    # Retry-After, not take the service down).
    "DEFAULT_RENDERER_CLASSES": [
        "core.api.renderers.SafeJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.ResilientUserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env.str("API_THROTTLE_RATE", default="600/min")},
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.BoundedLimitOffsetPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["core.filters.FilterBackend"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ducttape API",
    "DESCRIPTION": "Cross-silo metrics alignment: KPIs, measurements, goals, conflicts.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and the docs are public; every operation they describe is not.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.add_error_responses",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two models have a "status" with different choices: name each set once.
    "ENUM_NAME_OVERRIDES": {
        "ConflictStatusEnum": "conflicts.models.Status",
        "DetectionRunStatusEnum": "conflicts.models.RunStatus",
        "ConflictKindEnum": "conflicts.models.Kind",
        "CommitBlockerKindEnum": "planning.api.serializers.BLOCKER_KINDS",
        "ChannelKindEnum": "notifications.models.ChannelKind",
        "DeliveryStatusEnum": "notifications.models.DeliveryStatus",
        "PaceStatusEnum": "goals.pace.STATUSES",
        "PaceShapeEnum": "goals.pace.SHAPES",
    },
}

# Request bodies (not files: the import form caps those itself) held in memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int(
    "DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024
)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20_000
# History is a record: hide simple-history's "revert" button (HistoryAdmin refuses it too).
SIMPLE_HISTORY_REVERT_DISABLED = True

# The planning cycle's consistency check (planning.consistency): a knock-on that takes an
# affected goal's attainment down by at least this much is a goal contradiction.
PLANNING_CONTRADICTION_MARGIN = env.float("PLANNING_CONTRADICTION_MARGIN", default=0.25)
