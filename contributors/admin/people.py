"""Contributors in the admin: search and filters; profile edits go through contributor_update."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count

from contributors.admin.common import history_table
from contributors.countries import COUNTRY_CHOICES
from contributors.models import Contributor
from contributors.services import contributor_update


class ContributorAdminForm(forms.ModelForm):
    country = forms.ChoiceField(choices=COUNTRY_CHOICES, required=False)

    class Meta:
        model = Contributor
        fields = ["display_name", "legal_name", "country"]


@admin.register(Contributor)
class ContributorAdmin(admin.ModelAdmin):
    form = ContributorAdminForm
    list_display = ["display_name", "email", "legal_name", "country", "payout_status", "work_count", "created_at"]
    list_filter = ["payout_status", "country", "created_at"]
    search_fields = ["display_name", "legal_name", "user__email", "user__username"]
    list_select_related = ["user"]
    readonly_fields = ["user", "payout_status", "created_at", "updated_at", "history"]
    fieldsets = [
        (None, {"fields": ["user", "display_name", "legal_name", "country"]}),
        ("Payouts (kept in step with Stripe by the payouts app)", {"fields": ["payout_status"]}),
        ("Dates", {"fields": ["created_at", "updated_at"]}),
        ("Audit trail", {"fields": ["history"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(works_owned=Count("ownerships", distinct=True))

    # A contributor is created with their account (sign-up, grant_role) and never deleted: they own works
    # and have ledger history.
    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="e-mail", ordering="user__email")
    def email(self, obj: Contributor) -> str:
        return obj.user.email

    @admin.display(description="works", ordering="works_owned")
    def work_count(self, obj: Contributor) -> int:
        return obj.works_owned

    @admin.display(description="history")
    def history(self, obj: Contributor) -> str:
        return history_table([obj])

    def save_model(self, request, obj, form, change) -> None:
        if change and form.changed_data:
            values = {name: form.cleaned_data[name] for name in form.Meta.fields}
            contributor_update(contributor=obj, actor=request.user, **values)
