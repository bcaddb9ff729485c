"""Web processes stay free of torch: the earnings pages, the nightly services and the task module import it
only when a chunk is actually scored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_the_portal_the_tasks_and_the_nightly_services_import_no_torch():
    code = (
        "import django, sys; django.setup()\n"
        "import attribution.portal_views, attribution.portal_urls, attribution.tasks\n"
        "import attribution.nightly.services, attribution.nightly.selectors\n"
        "import attribution.management.commands.run_nightly\n"
        "print('torch' in sys.modules)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "royalties.settings_test", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr
