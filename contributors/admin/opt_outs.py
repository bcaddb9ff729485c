"""Opt-outs in the admin, with the CSV export model teams use to drop works from training sets."""

from __future__ import annotations

import csv

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import Http404, StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from contributors.models import OptOut
from contributors.selectors import opt_out_export_list
from contributors.services import work_opt_out_withdraw

EXPORT_COLUMNS = ["opt_out_id", "work_id", "sha256", "kind", "mime_type", "opted_out_at", "withdrawn_at", "in_force"]


class _Echo:
    def write(self, value: str) -> str:
        return value


def opt_out_csv_rows(opt_outs):
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for o in opt_outs.iterator(chunk_size=2000):
        yield writer.writerow([
            o.pk, o.work_id, o.work.sha256, o.work.kind, o.work.mime_type, o.opted_out_at.isoformat(),
            o.withdrawn_at.isoformat() if o.withdrawn_at else "", "true" if o.withdrawn_at is None else "false",
        ])


class InForceFilter(admin.SimpleListFilter):
    title = "in force"
    parameter_name = "in_force"

    def lookups(self, request, model_admin):
        return [("yes", "In force"), ("no", "Withdrawn")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(withdrawn_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(withdrawn_at__isnull=False)
        return queryset


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    change_list_template = "admin/contributors/optout/change_list.html"
    list_display = ["id", "work", "requested_by", "opted_out_at", "withdrawn_at", "in_force"]
    list_filter = [InForceFilter, "opted_out_at"]
    search_fields = ["=work__id", "=work__sha256", "work__title", "requested_by__display_name"]
    list_select_related = ["work", "requested_by"]
    date_hierarchy = "opted_out_at"
    readonly_fields = ["work", "requested_by", "opted_out_at", "reason", "withdrawn_at", "withdrawn_by"]
    actions = ["export_selected", "withdraw_selected"]

    # Opt-outs are made by owners (portal) or by the Work admin's action, and never deleted.
    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(boolean=True, description="in force")
    def in_force(self, obj: OptOut) -> bool:
        return obj.is_active

    def get_urls(self):
        return [
            path("export.csv", self.admin_site.admin_view(self.export_view), name="contributors_optout_export"),
            *super().get_urls(),
        ]

    def _csv(self, queryset) -> StreamingHttpResponse:
        response = StreamingHttpResponse(opt_out_csv_rows(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="opt-outs-{timezone.now():%Y%m%dT%H%M%SZ}.csv"'
        return response

    def export_view(self, request):
        """Every opt-out event (``?since=`` ISO time for changes only, ``?in_force=1`` for those in force)."""
        if not self.has_view_permission(request):
            raise Http404
        since = parse_datetime(request.GET["since"]) if request.GET.get("since") else None
        if request.GET.get("since") and since is None:
            messages.error(request, "since must be an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z.")
            return self.changelist_view(request)
        return self._csv(opt_out_export_list(since=since, active_only=request.GET.get("in_force") == "1"))

    @admin.action(description="Export selected as CSV")
    def export_selected(self, request, queryset):
        return self._csv(queryset.select_related("work").order_by("opted_out_at", "id"))

    @admin.action(description="Withdraw selected opt-outs", permissions=["change"])
    def withdraw_selected(self, request, queryset) -> None:
        done = 0
        for opt_out in queryset.filter(withdrawn_at__isnull=True).select_related("work"):
            try:
                work_opt_out_withdraw(work=opt_out.work, actor=request.user, requested_by=None)
            except ValidationError as exc:
                messages.error(request, f"Opt-out #{opt_out.pk}: {' '.join(exc.messages)}")
            else:
                done += 1
        messages.success(request, f"Withdrew {done} opt-out(s).")
