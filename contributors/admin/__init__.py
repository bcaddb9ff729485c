"""The catalog admin site: contributors, works (with owners inline and the import), disputes, opt-outs."""

from __future__ import annotations

from contributors.admin.disputes import DisputeAdmin
from contributors.admin.opt_outs import OptOutAdmin
from contributors.admin.people import ContributorAdmin
from contributors.admin.works import WorkAdmin

__all__ = ["ContributorAdmin", "DisputeAdmin", "OptOutAdmin", "WorkAdmin"]
