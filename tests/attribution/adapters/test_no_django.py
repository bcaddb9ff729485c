"""The adapters and the retrieval/copy-detection engine modules work without Django."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
MODULES = [
    "attribution.adapters",
    "attribution.adapters.hf_causal_lm",
    "attribution.adapters.torch_module",
    "attribution.adapters.reference_text",
    "attribution.adapters.reference_image",
    "attribution.adapters.retrieval",
    "attribution.adapters.scoring",
    "attribution.engine.retrieval",
    "attribution.engine.copy_detection",
]


def test_importing_adapters_and_engine_modules_never_loads_django():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + "from attribution.engine.copy_detection import CopyIndex\n"
        + "CopyIndex.build(texts=[(1, 'one two three four five six seven eight nine ten eleven twelve')])\n"
        + "assert not any(name == 'django' or name.startswith('django.') for name in sys.modules), 'django loaded'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
