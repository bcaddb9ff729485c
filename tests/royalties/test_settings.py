"""Settings read the environment and refuse unsafe or malformed values at start-up, saying why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_settings(env_overrides: dict[str, str], code: str = "import royalties.settings as s; print(s.DEBUG)"):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
    env.update(env_overrides)
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = run_settings({"ROYALTIES_DATA_DIR": str(tmp_path)})

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_debug_may_use_the_development_key(tmp_path):
    result = run_settings({"DJANGO_DEBUG": "1", "ROYALTIES_DATA_DIR": str(tmp_path)})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_a_malformed_boolean_names_the_variable(tmp_path):
    result = run_settings({"DJANGO_DEBUG": "maybe", "ROYALTIES_DATA_DIR": str(tmp_path)})

    assert result.returncode != 0
    assert "DJANGO_DEBUG must be a boolean" in result.stderr


def test_database_url_selects_postgresql_and_no_broker_means_eager(tmp_path):
    code = (
        "import royalties.settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], s.CELERY_TASK_ALWAYS_EAGER)"
    )
    result = run_settings(
        {"DJANGO_SECRET_KEY": "x" * 50, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/somedb",
         "ROYALTIES_DATA_DIR": str(tmp_path)},
        code,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "somedb", "True"]


def test_embedded_default_is_sqlite_in_the_data_dir_and_a_broker_disables_eager(tmp_path):
    code = (
        "import royalties.settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], s.CELERY_TASK_ALWAYS_EAGER)"
    )
    result = run_settings(
        {"DJANGO_SECRET_KEY": "x" * 50, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
         "ROYALTIES_DATA_DIR": str(tmp_path)},
        code,
    )

    assert result.returncode == 0, result.stderr
    engine, name, eager = result.stdout.split()
    assert engine == "django.db.backends.sqlite3"
    assert Path(name) == tmp_path / "royalties.sqlite3"
    assert eager == "False"
