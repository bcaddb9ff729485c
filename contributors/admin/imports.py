"""The admin's catalog import: upload a CSV/JSON Lines file, read the dry-run report, confirm.

The uploaded file is parked under ROYALTIES_IMPORT_DIR/pending/ between the dry run and the confirmation
(keyed by a random token remembered in the admin's session), and checked again in full when confirmed:
the catalog may have changed in between.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods

from contributors.models import Work
from contributors.services import catalog_import, import_format_for

_SESSION_KEY = "contributors.pending_imports"
_TOKEN = re.compile(r"^[0-9a-f]{32}$")


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV or JSON Lines file")
    format = forms.ChoiceField(
        choices=[("", "From the file name (.csv, .jsonl)"), ("csv", "CSV"), ("jsonl", "JSON Lines")], required=False
    )


def _import_dir() -> Path:
    return Path(settings.ROYALTIES_IMPORT_DIR)


def _pending_path(token: str) -> Path:
    return _import_dir() / "pending" / token


def import_view(model_admin):
    @require_http_methods(["GET", "POST"])
    def view(request):
        if not request.user.has_perm("contributors.add_work"):
            raise Http404
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": Work._meta,
            "title": "Import works",
            "import_dir": _import_dir(),
            "max_request": settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        }
        pending: dict = request.session.get(_SESSION_KEY, {})
        if request.method == "POST" and "confirm" in request.POST:
            token = request.POST.get("token", "")
            meta = pending.get(token) if _TOKEN.match(token) else None
            if meta is None or not _pending_path(token).is_file():
                messages.error(request, "That import is no longer pending: upload the file again.")
                return redirect("admin:contributors_work_import")
            report = catalog_import(
                data=_pending_path(token).read_bytes(), fmt=meta["format"], base_dir=_import_dir(),
                actor=request.user, dry_run=False, source_name=meta["name"],
            )
            _pending_path(token).unlink(missing_ok=True)
            pending.pop(token, None)
            request.session[_SESSION_KEY] = pending
            if report.imported:
                messages.success(
                    request,
                    f"Imported {len(report.created)} work(s) from {meta['name']}"
                    + (f"; {len(report.disputes)} dispute(s) opened." if report.disputes else "."),
                )
                return redirect("admin:contributors_work_changelist")
            return TemplateResponse(
                request, "admin/contributors/work/import.html", {**context, "form": ImportForm(), "report": report}
            )

        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                form.add_error("file", f"The import file is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
            else:
                try:
                    fmt = import_format_for(upload.name, form.cleaned_data["format"] or None)
                except ValueError as exc:
                    form.add_error("format", str(exc))
                else:
                    data = upload.read()
                    report = catalog_import(
                        data=data, fmt=fmt, base_dir=_import_dir(), actor=request.user, dry_run=True,
                        source_name=upload.name,
                    )
                    token = ""
                    if report.ok:
                        token = secrets.token_hex(16)
                        _pending_path(token).parent.mkdir(parents=True, exist_ok=True)
                        _pending_path(token).write_bytes(data)
                        pending[token] = {"name": upload.name, "format": fmt}
                        request.session[_SESSION_KEY] = pending
                    return TemplateResponse(
                        request, "admin/contributors/work/import.html",
                        {**context, "form": ImportForm(), "report": report, "token": token},
                    )
        return TemplateResponse(request, "admin/contributors/work/import.html", {**context, "form": form})

    return view
