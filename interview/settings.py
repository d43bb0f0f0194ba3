"""Django settings for InferPrep.

Every setting comes from an environment variable with an embedded default, so a bare laptop runs
the app with no configuration (SQLite, a filesystem Celery broker and the in-memory channel
layer under ``var/``), and production or CI point ``DATABASE_URL`` and ``REDIS_URL`` at real
services. The README lists each variable.
"""

import os
import secrets
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("INFERPREP_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable: 1/true/yes/on are true, 0/false/no/off are false."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false).")


# Off unless a developer turns it on: the debug pages show settings and source to anyone.
DEBUG = env_bool("DEBUG", False)
# `make run` makes a "demo" account and prints its password, for a first look on a laptop; a
# public deployment turns it off (deploy/compose.yaml), or anyone who reads its log can sign in.
DEMO_ACCOUNT = env_bool("DEMO_ACCOUNT", True)


def secret_key_kept(path: Path) -> str:
    """The signing key kept in ``path``, made on first use: random, readable by its owner only.

    Several hosts serving one site must share one key: give them ``SECRET_KEY`` instead."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    # Written whole under a private name, then linked into place: a process starting at the
    # same moment either links first or reads the finished key of the one that did.
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as kept:
        kept.write(secrets.token_urlsafe(50))
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY", "") or secret_key_kept(VAR_DIR / "secret-key.txt")

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    # Serves the interactive API docs' JavaScript and CSS from our own static files.
    "ninja",
    "interview",
    "grader",
    "lab",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "grader.input_guard.InputGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "interview.security.ContentSecurityPolicyMiddleware",
]
# Debug pages and error mails mask the passwords inside URL-valued settings too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "interview.security.CredentialsMaskingFilter"

ROOT_URLCONF = "interview.urls"
ASGI_APPLICATION = "interview.asgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
# Connections are not kept between requests (conn_max_age 0): under ASGI each request may run
# on another thread, and persistent per-thread connections would pile up.
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL or f"sqlite:///{VAR_DIR / 'inferprep.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"] |= {
        # A file, not memory, so that a worker process started by a test sees the same
        # test database as the test itself.
        "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
        # The web server's threads and the worker write concurrently. WAL lets readers read
        # while one writes; IMMEDIATE takes the write lock when a transaction begins, so two
        # transactions that read and then write queue for it (the busy timeout, seconds)
        # instead of one failing at once with "database is locked" (SQLite cannot upgrade a
        # reader that another writer raced). synchronous=NORMAL is safe under WAL.
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, Celery and Channels -------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_DIR = VAR_DIR / "celery" / "broker"
CELERY_RESULTS_DIR = VAR_DIR / "celery" / "results"

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A job that is not acknowledged within this time is handed to another worker;
        # longer than the longest grading job so live jobs are never duplicated.
        "visibility_timeout": 3600,
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    for folder in (CELERY_BROKER_DIR, CELERY_RESULTS_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_RESULT_BACKEND = f"file://{CELERY_RESULTS_DIR}"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR),
        "data_folder_out": str(CELERY_BROKER_DIR),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The log-in limits' counters (grader.login_guard): in Redis, shared by every web process; in
# this process's memory for the embedded default, which serves from one process, and while
# Redis does not answer. A second is long for Redis: past it, the limits fall back at once.
# CACHE_KEY_PREFIX keeps sites (or test runs) that share one Redis out of each other's counters.
CACHE_KEY_PREFIX = os.environ.get("CACHE_KEY_PREFIX", "")
LOCAL_CACHE = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "local",
    "KEY_PREFIX": CACHE_KEY_PREFIX,
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    if REDIS_URL
    else LOCAL_CACHE,
    "local": LOCAL_CACHE,
}

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_WORKER_QUEUES = [
    q.strip() for q in os.environ.get("CELERY_QUEUES", "cpu,gpu").split(",") if q.strip()
]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One job at a time per worker process, so a long grading job never holds others hostage.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_EXPIRES = 3600

# The grader's worker settings (WORKER_ALIVE_S, WORKER_HEARTBEAT_S, GRADER_LOST_AFTER_S, ...)
# are its own, in grader/conf.py; a setting of the same name here overrides one.
# The judge's rubric-text embeddings, kept by `manage.py warm_judge` and read by the server as
# it starts (JUDGE_WARM_UP=0: neither, each rubric's texts are embedded at its first grade).
JUDGE_EMBEDDINGS_PATH = VAR_DIR / "judge-embeddings.npz"
JUDGE_WARM_UP = os.environ.get("JUDGE_WARM_UP", "1").lower() in ("1", "true", "yes")
# Publishing authored content needs a member of the "reviewer" group (or a superuser). On, a
# reviewer may publish what they wrote themselves: `make run` serves one person, who is both.
# A team sets ALLOW_SELF_REVIEW=0 so that a second person approves every publication.
ALLOW_SELF_REVIEW = env_bool("ALLOW_SELF_REVIEW", True)
# Where `manage.py serve` says how its worker is (running, or restarting after an exit).
SERVE_WORKER_STATE_PATH = VAR_DIR / "serve-worker.json"

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# WhiteNoise serves from the finders (app and project folders); an empty root keeps it from
# warning at every start that collectstatic never ran.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Model weights --------------------------------------------------------------------------
MODELS_DIR = Path(os.environ.get("INFERPREP_MODELS_DIR", VAR_DIR / "models"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler", "stream": sys.stderr}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
