"""Settings for the royalty platform, read from the environment.

With nothing set, the platform runs on an embedded default: a SQLite file in the data directory, Celery
tasks executed in-process, the local fake Stripe server. Production sets ``DATABASE_URL``,
``CELERY_BROKER_URL``, ``DJANGO_SECRET_KEY`` and the Stripe keys (see ``docker/.env.example``).
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """Read an integer setting; fail loudly (naming the variable) on a bad value."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), got {raw!r}")


DEBUG = _env_bool("DJANGO_DEBUG", False)

# Where the embedded database, uploaded works, attribution indexes and statements live.
DATA_DIR = Path(os.environ.get("ROYALTIES_DATA_DIR") or BASE_DIR / "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Production (DJANGO_DEBUG off) refuses to start without a secret "
            "key, because sessions, CSRF tokens and password-reset links are signed with it. Set "
            "DJANGO_SECRET_KEY to a long random string, or DJANGO_DEBUG=1 for local development."
        )
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production"  # noqa: S105 - only with DEBUG on

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = os.environ.get("ROYALTIES_SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files: /api/docs/ works offline
    "django_celery_results",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    # Our apps, bottom of the house first: the ledger and the audit trail import no other app's code.
    "royalties.ledger",
    "audit",
    "accounts",
    "contributors",
    "attribution",
    "payouts",
    "demo",  # manage.py demo: the offline end-to-end story (no models, no URLs)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.StaffMfaRequiredMiddleware",
]

ROOT_URLCONF = "royalties.urls"
WSGI_APPLICATION = "royalties.wsgi.application"
ASGI_APPLICATION = "royalties.asgi.application"

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
                "accounts.context_processors.roles",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------
# DATABASE_URL selects PostgreSQL (psycopg 3) in production; otherwise an embedded SQLite file.
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": env.db("DATABASE_URL")}
    DATABASES["default"].setdefault("CONN_MAX_AGE", _env_int("DATABASE_CONN_MAX_AGE", 60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "royalties.sqlite3",
            "OPTIONS": {
                # IMMEDIATE transactions + WAL: concurrent writers (web + in-process tasks) wait for the
                # lock instead of failing with "database is locked" half-way through a transaction.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
WHITENOISE_USE_FINDERS = DEBUG  # development serves from the app folders; production from collectstatic
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("ROYALTIES_MEDIA_ROOT") or DATA_DIR / "media")

# --- Security -------------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the API's session clients read it, as Django documents
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = _env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = _env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
    SECURE_HSTS_SECONDS = _env_int("DJANGO_HSTS_SECONDS", 0)

# --- Accounts (django-allauth) --------------------------------------------------------------------------
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ROYALTIES_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
ACCOUNT_LOGOUT_ON_GET = False
# Sign-up creates the contributor profile and grants the contributor role in the same transaction.
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.ContributorSignupForm"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Contributor Royalties"

EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = _env_int("DJANGO_EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("DJANGO_EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "royalties@localhost")

# --- REST API -------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("ROYALTIES_THROTTLE_USER", "2000/minute"),
        "anon": os.environ.get("ROYALTIES_THROTTLE_ANON", "60/minute"),
        "model_service": os.environ.get("ROYALTIES_THROTTLE_MODEL_SERVICE", "100000/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Contributor Royalty Platform API",
    "DESCRIPTION": "Log generations from model services; read catalog, attribution and earnings data.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status"; name each enum after its model so the schema has no generated names.
    "ENUM_NAME_OVERRIDES": {
        "WorkStatusEnum": "contributors.models.Work.Status",
        "WorkKindEnum": "contributors.models.Work.Kind",
        "DisputeStatusEnum": "contributors.models.Dispute.Status",
        "GenerationIngestStatusEnum": ["created", "existing"],
        "ManifestFormatEnum": ["csv", "jsonl"],
        "CurrencyEnum": "attribution.services.currencies.ISO_4217_CODES",
        "PayoutRunStatusEnum": "payouts.models.PayoutRun.Status",
        "PayoutStatusEnum": "payouts.models.Payout.Status",
    },
}
# Largest request body the API accepts (a batch of 1,000 generations with prompts and outputs).
DATA_UPLOAD_MAX_MEMORY_SIZE = _env_int("ROYALTIES_MAX_REQUEST_BYTES", 32 * 1024 * 1024, minimum=1024)

# --- Catalog --------------------------------------------------------------------------------------------
ROYALTIES_MAX_UPLOAD_BYTES = _env_int("ROYALTIES_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, minimum=1)
# Files named by a catalog import uploaded in the admin are read from here (paths may not leave it).
ROYALTIES_IMPORT_DIR = Path(os.environ.get("ROYALTIES_IMPORT_DIR") or DATA_DIR / "imports").resolve()
ROYALTIES_CURRENCY = os.environ.get("ROYALTIES_CURRENCY", "USD").upper()

# --- Ledger ---------------------------------------------------------------------------------------------
# The ledger imports no other app; its services record every money action through this callable.
LEDGER_AUDIT_RECORDER = "audit.services.audit_record"

# --- Attribution ----------------------------------------------------------------------------------------
ROYALTIES_INDEX_DIR = Path(os.environ.get("ROYALTIES_INDEX_DIR") or DATA_DIR / "indexes")
ROYALTIES_MODEL_DIR = Path(os.environ.get("ROYALTIES_MODEL_DIR") or DATA_DIR / "models")
ROYALTIES_NIGHTLY_CHUNK_SIZE = _env_int("ROYALTIES_NIGHTLY_CHUNK_SIZE", 500, minimum=1)
# Prompt and output text of attributed generations is purged after this many days (0 keeps it forever).
ROYALTIES_GENERATION_TEXT_RETENTION_DAYS = _env_int("ROYALTIES_GENERATION_TEXT_RETENTION_DAYS", 90)
# Largest revenue one logged generation may carry, in whole currency units: anything above is a bug upstream.
ROYALTIES_MAX_GENERATION_REVENUE = _env_int("ROYALTIES_MAX_GENERATION_REVENUE", 1_000_000, minimum=1)

# --- Stripe ---------------------------------------------------------------------------------------------
# With no STRIPE_API_BASE the platform talks to the local fake Stripe server (manage.py fakestripe).
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "sk_test_fake_local")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "http://127.0.0.1:12111")
STRIPE_CONNECT_BASE = os.environ.get("STRIPE_CONNECT_BASE", STRIPE_API_BASE)
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "whsec_fake_local")
# The version the installed stripe SDK (16.1.0) is pinned to: its typed objects describe exactly this version.
STRIPE_API_VERSION = os.environ.get("STRIPE_API_VERSION", "2026-10-28.endive")
STRIPE_MAX_RETRIES = _env_int("STRIPE_MAX_RETRIES", 5)
STRIPE_CONCURRENCY = _env_int("STRIPE_CONCURRENCY", 25, minimum=1)

# --- Payout runs ----------------------------------------------------------------------------------------
# Smallest payout in minor units. 0: the highest payout_threshold_minor among the royalty programs in force
# in the run's currency (payouts/services/runs.py, payout_run_threshold).
ROYALTIES_PAYOUT_THRESHOLD_MINOR = _env_int("ROYALTIES_PAYOUT_THRESHOLD_MINOR", 0)
# A run's payouts are sent in batches (one Celery task each); a batch keeps this many transfers in flight.
PAYOUTS_BATCH_SIZE = _env_int("PAYOUTS_BATCH_SIZE", 500, minimum=1)
PAYOUTS_EXECUTION_THREADS = _env_int("PAYOUTS_EXECUTION_THREADS", STRIPE_CONCURRENCY, minimum=1)

# --- Celery ---------------------------------------------------------------------------------------------
# No broker: tasks run in-process (the embedded default) and their errors propagate to the caller.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "django-db")
CELERY_RESULT_EXTENDED = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
# A worker killed mid-task gives its message back to the queue: a crashed night resumes.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = _env_int("CELERY_TASK_SOFT_TIME_LIMIT", 30 * 60, minimum=1)
CELERY_TASK_TIME_LIMIT = _env_int("CELERY_TASK_TIME_LIMIT", 35 * 60, minimum=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}  # filled in royalties/celery.py

# --- Logging --------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("ROYALTIES_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The SDK logs every request at INFO; payouts.stripe_client logs each call once, with its idempotency key.
        "stripe": {"level": "WARNING"},
    },
}
