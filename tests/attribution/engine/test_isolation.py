"""The engine is a plain library: importing it never loads Django (ARCHITECTURE.md, STYLE.md section 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_import_engine_does_not_load_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = ("import sys; import attribution.engine as e; e.GradientIndex; "
            "web = ('django', 'celery', 'royalties', 'rest_framework'); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in web); "
            "print('LOADED:' + ','.join(bad))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "LOADED:", result.stdout + result.stderr


def test_attribution_package_init_stays_empty():
    # every engine import runs attribution/__init__.py: it must not pull in the Django app
    assert (ROOT / "attribution" / "__init__.py").read_text().strip() == ""
