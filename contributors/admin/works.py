"""Works in the admin: search, filters, owner splits (through ownership_set), bulk actions, audit history,
and the bulk import (upload -> dry-run report -> confirm)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.forms.models import BaseInlineFormSet
from django.http import Http404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from contributors.admin.common import history_table, report_errors
from contributors.admin.imports import import_view
from contributors.downloads import work_content_response
from contributors.models import Dispute, Ownership, Work
from contributors.selectors import work_dispute_list
from contributors.services import (
    ownership_set,
    ownership_validate,
    work_opt_out,
    work_opt_out_withdraw,
    work_remove,
    work_restore,
    work_update,
)


class OwnershipFormSet(BaseInlineFormSet):
    """The inline's rows are one owner set: checked as a whole here, saved as a whole by ``ownership_set``."""

    def owner_shares(self) -> dict:
        shares = {}
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if not data or data.get("DELETE") or not data.get("contributor"):
                continue
            if data["contributor"] in shares:
                raise ValidationError(f"{data['contributor']} is listed twice.")
            shares[data["contributor"]] = data.get("bps")
        return shares

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        try:
            ownership_validate(shares=self.owner_shares())
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc


class OwnershipInline(admin.TabularInline):
    model = Ownership
    formset = OwnershipFormSet
    fields = ["contributor", "bps", "percent"]
    readonly_fields = ["percent"]
    autocomplete_fields = ["contributor"]
    extra = 1
    verbose_name = "owner"
    verbose_name_plural = "Owners (basis points; must sum to exactly 10,000)"

    @admin.display(description="share")
    def percent(self, obj) -> str:
        return f"{obj.bps // 100}.{obj.bps % 100:02d}%" if obj and obj.bps else ""


class OptedOutFilter(admin.SimpleListFilter):
    title = "training"
    parameter_name = "opted_out"

    def lookups(self, request, model_admin):
        return [("yes", "Opted out"), ("no", "Available for training")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(opted_out_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(opted_out_at__isnull=True)
        return queryset


class WorkAdminForm(forms.ModelForm):
    class Meta:
        model = Work
        fields = ["title", "description"]


@admin.register(Work)
class WorkAdmin(admin.ModelAdmin):
    form = WorkAdminForm
    change_list_template = "admin/contributors/work/change_list.html"
    list_display = ["id", "title", "kind", "status_badge", "opted_out_at", "owners_summary", "size_bytes", "created_at"]
    list_display_links = ["id", "title"]
    list_filter = ["status", "kind", OptedOutFilter, "created_at"]
    search_fields = [
        "title", "description", "=sha256", "ownerships__contributor__display_name",
        "ownerships__contributor__user__email",
    ]
    date_hierarchy = "created_at"
    list_per_page = 50
    inlines = [OwnershipInline]
    readonly_fields = [
        "kind", "mime_type", "size_bytes", "sha256", "content", "status", "opted_out_at", "created_by", "created_at",
        "updated_at", "disputes", "history",
    ]
    fieldsets = [
        (None, {"fields": ["title", "description"]}),
        ("Content (read from the bytes; change it from the portal or by import)",
         {"fields": ["kind", "mime_type", "size_bytes", "sha256", "content"]}),
        ("State", {"fields": ["status", "opted_out_at", "created_by", "created_at", "updated_at", "disputes"]}),
        ("Audit trail", {"fields": ["history"]}),
    ]
    actions = ["opt_out_selected", "withdraw_opt_out_selected", "remove_selected", "restore_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(owner_count=Count("ownerships", distinct=True))

    # Works are registered through uploads and imports (content sniffing, duplicate checks) and are
    # never deleted: removal is a status, so history and earnings keep pointing at them.
    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Work) -> str:
        colour = {"active": "#1b7f4b", "disputed": "#a86400", "removed": "#b3261e"}.get(obj.status, "#333")
        return format_html('<strong style="color:{}">{}</strong>', colour, obj.get_status_display())

    @admin.display(description="owners")
    def owners_summary(self, obj: Work) -> str:
        owners = obj.ownerships.select_related("contributor").order_by("-bps")[:3]
        text = ", ".join(f"{o.contributor.display_name} {o.bps // 100}.{o.bps % 100:02d}%" for o in owners)
        more = getattr(obj, "owner_count", 0) - 3
        return text + (f" +{more}" if more > 0 else "")

    @admin.display(description="disputes")
    def disputes(self, obj: Work) -> str:
        items = list(work_dispute_list(work=obj))
        if not items:
            return "—"
        return format_html_join(
            format_html("<br>"),
            '<a href="{}">Dispute #{}</a>: {} ({})',
            (
                (reverse("admin:contributors_dispute_change", args=[d.pk]), d.pk, d.get_status_display(),
                 "this is the claim" if d.claim_work_id == obj.pk else "this is the original")
                for d in items
            ),
        )

    @admin.display(description="content")
    def content(self, obj: Work) -> str:
        if not (obj.file or obj.text_body):
            return "—"
        url = reverse("admin:contributors_work_content", args=[obj.pk])
        name = obj.file.name.rsplit("/", 1)[-1] if obj.file else f"work-{obj.pk}.txt"
        return format_html('<a href="{}">Download {}</a>', url, name)

    def content_view(self, request, pk: int):
        work = Work.objects.filter(pk=pk).first()
        if work is None or not self.has_view_permission(request, work):
            raise Http404
        return work_content_response(work=work)

    @admin.display(description="history")
    def history(self, obj: Work) -> str:
        return history_table([obj, *work_dispute_list(work=obj)])

    def save_model(self, request, obj, form, change) -> None:
        # The form only edits title and description; the service writes them (and the audit event).
        if change and form.changed_data:
            work_update(
                work=obj, actor=request.user, title=form.cleaned_data["title"],
                description=form.cleaned_data["description"],
            )

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status == Work.Status.REMOVED:
            fields += ["title", "description"]  # a removed work is kept as it was
        return fields

    def save_formset(self, request, form, formset, change) -> None:
        if isinstance(formset, OwnershipFormSet):
            if formset.has_changed():
                ownership_set(
                    work=form.instance, shares=formset.owner_shares(), actor=request.user, reason="edited in the admin"
                )
            # The admin's change message reads these; the rows were written by ownership_set, not formset.save().
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            return
        super().save_formset(request, form, formset, change)

    # --- bulk actions --------------------------------------------------------------------------------

    def _each(self, request, queryset, label: str, call) -> None:
        done = 0
        for work in queryset:
            try:
                call(work)
            except ValidationError as exc:
                report_errors(request, exc, prefix=f"Work #{work.pk}: ")
            else:
                done += 1
        if done:
            messages.success(request, f"{label}: {done} work(s).")

    @admin.action(description="Opt out of future training", permissions=["change"])
    def opt_out_selected(self, request, queryset) -> None:
        self._each(
            request, queryset.filter(opted_out_at__isnull=True), "Opted out",
            lambda w: work_opt_out(work=w, actor=request.user, requested_by=None, reason="catalog admin bulk action"),
        )

    @admin.action(description="Withdraw opt-out (back in future training)", permissions=["change"])
    def withdraw_opt_out_selected(self, request, queryset) -> None:
        self._each(
            request, queryset.filter(opted_out_at__isnull=False), "Opt-out withdrawn",
            lambda w: work_opt_out_withdraw(work=w, actor=request.user, requested_by=None),
        )

    @admin.action(description="Mark removed (keeps all history)", permissions=["change"])
    def remove_selected(self, request, queryset) -> None:
        self._each(
            request, queryset.exclude(status=Work.Status.REMOVED), "Removed",
            lambda w: work_remove(work=w, actor=request.user, reason="catalog admin bulk action"),
        )

    @admin.action(description="Restore removed works", permissions=["change"])
    def restore_selected(self, request, queryset) -> None:
        self._each(
            request, queryset.filter(status=Work.Status.REMOVED), "Restored",
            lambda w: work_restore(work=w, actor=request.user, reason="catalog admin bulk action"),
        )

    # --- import --------------------------------------------------------------------------------------

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(import_view(self)), name="contributors_work_import"),
            path("<int:pk>/content/", self.admin_site.admin_view(self.content_view), name="contributors_work_content"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {
            "can_import": request.user.has_perm("contributors.add_work"),
            "open_disputes": Dispute.objects.filter(status=Dispute.Status.OPEN).count(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)

