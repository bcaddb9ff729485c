"""Settings for the test suite: the same settings, plus a key, fast hashing and in-process tasks."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("ROYALTIES_DATA_DIR", tempfile.mkdtemp(prefix="royalties-test-"))
os.environ.setdefault("ROYALTIES_EMAIL_VERIFICATION", "optional")

from royalties.settings import *  # noqa: F403
from royalties.settings import CELERY_BROKER_URL, DATA_DIR, DATABASES

STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
# Pages render {% static %} without a collectstatic run: the manifest storage would refuse every lookup.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True  # live-server (browser) tests get the CSS from the app folders
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# Tests run tasks in-process, except those marked `celery_worker`: tests/conftest.py starts a real worker
# process for them, which runs with ROYALTIES_TEST_WORKER=1 on the test database the test run created.
TEST_CELERY_BROKER_URL = CELERY_BROKER_URL
IS_TEST_WORKER = os.environ.get("ROYALTIES_TEST_WORKER") == "1"
CELERY_TASK_ALWAYS_EAGER = not IS_TEST_WORKER
CELERY_TASK_EAGER_PROPAGATES = True
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so that a worker process can open the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-royalties.sqlite3")}
if os.environ.get("ROYALTIES_TEST_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["ROYALTIES_TEST_DB_NAME"]

REST_FRAMEWORK = {**REST_FRAMEWORK}  # noqa: F405
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
    "user": "100000/minute",
    "anon": "100000/minute",
}
