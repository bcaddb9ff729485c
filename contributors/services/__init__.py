"""Every write to the catalog goes through these functions; each one records itself in the audit trail."""

from __future__ import annotations

from contributors.services.content import Content, content_check, content_from_text, content_from_upload
from contributors.services.contributors import contributor_ensure, contributor_register, contributor_update
from contributors.services.disputes import dispute_open, dispute_resolve
from contributors.services.imports import ImportIssue, ImportReport, catalog_import, import_format_for
from contributors.services.opt_outs import work_opt_out, work_opt_out_withdraw
from contributors.services.ownership import bps_scale, ownership_set, ownership_validate
from contributors.services.works import WorkRegistration, work_create, work_remove, work_restore, work_update

__all__ = [
    "Content",
    "ImportIssue",
    "ImportReport",
    "WorkRegistration",
    "bps_scale",
    "catalog_import",
    "content_check",
    "content_from_text",
    "content_from_upload",
    "contributor_ensure",
    "contributor_register",
    "contributor_update",
    "dispute_open",
    "dispute_resolve",
    "import_format_for",
    "ownership_set",
    "ownership_validate",
    "work_create",
    "work_opt_out",
    "work_opt_out_withdraw",
    "work_remove",
    "work_restore",
    "work_update",
]
