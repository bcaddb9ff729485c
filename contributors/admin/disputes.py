"""The dispute queue: open disputes oldest first, resolved one by one (uphold, split, reject) or in bulk."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.timesince import timesince

from contributors.admin.common import history_table, report_errors
from contributors.models import BPS_TOTAL, Dispute
from contributors.selectors import work_owner_list
from contributors.services import dispute_resolve


class QueueFilter(admin.SimpleListFilter):
    """Open disputes by default: the page is a work queue."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("open", "Open (to decide)"), ("resolved", "Resolved"), ("all", "All")]

    def choices(self, changelist):
        value = self.value() or "open"
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or "open"
        if value == "open":
            return queryset.filter(status=Dispute.Status.OPEN)
        if value == "resolved":
            return queryset.exclude(status=Dispute.Status.OPEN)
        return queryset


class ResolveForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=[
            (Dispute.Status.UPHELD, "Uphold: the claimant's owners get the work"),
            (Dispute.Status.SPLIT, "Split: the claimant's owners get a share"),
            (Dispute.Status.REJECTED, "Reject: the original owners keep the work"),
        ],
        widget=forms.RadioSelect,
    )
    claimant_bps = forms.IntegerField(
        required=False, min_value=1, max_value=BPS_TOTAL - 1, label="Claimant's share (basis points, for a split)"
    )
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Resolution note (kept with the decision)")


class BulkResolveForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Resolution note (kept with each decision)")


@admin.register(Dispute)
class DisputeAdmin(admin.ModelAdmin):
    change_form_template = "admin/contributors/dispute/change_form.html"
    list_display = ["id", "status", "work_link", "claim_link", "claimant", "created_at", "age", "resolved_by"]
    list_filter = [QueueFilter, "status", "created_at"]
    search_fields = ["=id", "=sha256", "work__title", "claim_work__title", "claimant__display_name"]
    ordering = ["created_at", "id"]
    list_select_related = ["work", "claim_work", "claimant", "resolved_by"]
    readonly_fields = [
        "status", "work_link", "work_owners", "claim_link", "claim_owners", "claimant", "sha256", "claimant_bps",
        "resolution_note", "resolved_by", "resolved_at", "created_at", "history",
    ]
    fieldsets = [
        (None, {"fields": ["status", "sha256", "created_at"]}),
        ("Original registration", {"fields": ["work_link", "work_owners"]}),
        ("Later claim", {"fields": ["claim_link", "claimant", "claim_owners"]}),
        ("Decision", {"fields": ["claimant_bps", "resolution_note", "resolved_by", "resolved_at"]}),
        ("Audit trail", {"fields": ["history"], "classes": ["collapse"]}),
    ]
    actions = ["uphold_selected", "reject_selected"]

    # Disputes open themselves (duplicate content) and are closed by resolving, never by editing or deleting.
    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="original work")
    def work_link(self, obj: Dispute) -> str:
        return format_html(
            '<a href="{}">#{} {}</a> ({})', reverse("admin:contributors_work_change", args=[obj.work_id]),
            obj.work_id, obj.work.title, obj.work.get_status_display(),
        )

    @admin.display(description="claim")
    def claim_link(self, obj: Dispute) -> str:
        return format_html(
            '<a href="{}">#{} {}</a> ({})', reverse("admin:contributors_work_change", args=[obj.claim_work_id]),
            obj.claim_work_id, obj.claim_work.title, obj.claim_work.get_status_display(),
        )

    @admin.display(description="owners of the original now")
    def work_owners(self, obj: Dispute) -> str:
        return _owners(obj.work)

    @admin.display(description="owners of the claim")
    def claim_owners(self, obj: Dispute) -> str:
        return _owners(obj.claim_work)

    @admin.display(description="waiting")
    def age(self, obj: Dispute) -> str:
        return timesince(obj.created_at) if obj.is_open else "—"

    @admin.display(description="history")
    def history(self, obj: Dispute) -> str:
        return history_table([obj, obj.work, obj.claim_work])

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"resolve_form": ResolveForm(), "can_resolve": self.has_change_permission(request)}
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def get_urls(self):
        return [
            path(
                "<int:pk>/resolve/", self.admin_site.admin_view(self.resolve_view),
                name="contributors_dispute_resolve",
            ),
            *super().get_urls(),
        ]

    def resolve_view(self, request, pk: int):
        return _resolve(self, request, pk)

    # --- bulk actions (a note is asked for first) -----------------------------------------------------

    def _bulk(self, request, queryset, outcome: str, label: str):
        if "apply" in request.POST:
            form = BulkResolveForm(request.POST)
            if form.is_valid():
                done = 0
                for dispute in queryset.filter(status=Dispute.Status.OPEN):
                    try:
                        dispute_resolve(
                            dispute=dispute, outcome=outcome, actor=request.user, note=form.cleaned_data["note"]
                        )
                    except ValidationError as exc:
                        report_errors(request, exc, prefix=f"Dispute #{dispute.pk}: ")
                    else:
                        done += 1
                messages.success(request, f"{label} {done} dispute(s).")
                return None
        else:
            form = BulkResolveForm()
        return TemplateResponse(
            request,
            "admin/contributors/dispute/bulk_resolve.html",
            {
                **self.admin_site.each_context(request), "opts": self.model._meta, "title": f"{label} disputes",
                "form": form, "disputes": queryset, "action": request.POST.get("action"), "outcome": outcome,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description="Uphold selected claims (claimants' owners get the works)", permissions=["change"])
    def uphold_selected(self, request, queryset):
        return self._bulk(request, queryset, Dispute.Status.UPHELD, "Upheld")

    @admin.action(description="Reject selected claims (original owners keep the works)", permissions=["change"])
    def reject_selected(self, request, queryset):
        return self._bulk(request, queryset, Dispute.Status.REJECTED, "Rejected")


def _owners(work) -> str:
    owners = work_owner_list(work=work)
    return ", ".join(f"{o.contributor.display_name} ({o.bps} bp)" for o in owners) or "—"


def _resolve(model_admin: DisputeAdmin, request, pk: int):
    if not model_admin.has_change_permission(request):
        raise Http404
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    dispute = get_object_or_404(Dispute, pk=pk)
    form = ResolveForm(request.POST)
    if form.is_valid():
        try:
            dispute_resolve(
                dispute=dispute, outcome=form.cleaned_data["outcome"], actor=request.user,
                note=form.cleaned_data["note"], claimant_bps=form.cleaned_data.get("claimant_bps"),
            )
        except ValidationError as exc:
            report_errors(request, exc)
        else:
            dispute.refresh_from_db()
            messages.success(request, f"Dispute #{dispute.pk}: {dispute.get_status_display()}.")
            return redirect("admin:contributors_dispute_changelist")
    else:
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"{form.fields[field].label if field in form.fields else ''}: {error}")
    return redirect("admin:contributors_dispute_change", pk)
