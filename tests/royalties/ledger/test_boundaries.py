"""The ledger sits at the bottom of the house: it imports no other app, and its maths imports no Django."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
LEDGER = REPO / "royalties" / "ledger"
OTHER_APPS = {"accounts", "audit", "contributors", "attribution", "payouts"}


def test_no_ledger_module_imports_another_app():
    offenders = []
    for path in LEDGER.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in OTHER_APPS]
    assert offenders == []


def test_allocation_and_policy_work_without_django():
    # royalties/__init__.py loads the Celery app (and so Django) for the project; the maths must not need it.
    # Stand-in package objects keep that __init__ from running, so only the modules' own imports count.
    code = f"""
import sys, types
for name, path in (("royalties", {str(REPO / "royalties")!r}), ("royalties.ledger", {str(LEDGER)!r})):
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module
import royalties.ledger.allocation, royalties.ledger.policy, royalties.ledger.policy_reference
print(sorted(m for m in sys.modules if m.split(".")[0] in {{"django", "torch", "celery"}}))
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
