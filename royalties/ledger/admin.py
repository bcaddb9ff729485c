"""Read-only admin for the ledger. The only writes it allows go through services: a new program (with its
first terms) and new terms versions. Entries, postings, accounts and periods are shown, never edited."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, Sum
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html

from royalties.ledger.errors import LedgerError
from royalties.ledger.models import Account, Accrual, JournalEntry, Period, Posting, RoyaltyProgram, RoyaltyProgramTerms
from royalties.ledger.services import program_terms_create, royalty_program_create
from royalties.ledger.services.programs import terms_effective_from_check, terms_validate

INLINE_POSTINGS = 200


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shows rows; refuses add, change and delete (the ledger is written by services only)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Period)
class PeriodAdmin(ReadOnlyAdmin):
    list_display = ["day", "status", "closed_at", "closed_by_label", "entry_count"]
    list_filter = ["status"]
    date_hierarchy = "day"
    readonly_fields = [f.name for f in Period._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_entries=Count("entries"))

    @admin.display(description="entries", ordering="n_entries")
    def entry_count(self, obj) -> int:
        return obj.n_entries


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "currency", "program", "contributor", "balance_micros"]
    list_filter = ["kind", "currency"]
    search_fields = ["contributor__display_name", "program__name"]
    list_select_related = ["program", "contributor"]
    readonly_fields = [f.name for f in Account._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(balance=Sum("postings__amount_micros"))

    @admin.display(description="raw balance (micros, debit +)", ordering="balance")
    def balance_micros(self, obj) -> int:
        return obj.balance or 0


class FirstPostingsFormSet(BaseInlineFormSet):
    def get_queryset(self):
        # An accrual entry may carry thousands of postings; the page shows the first ones and links the rest.
        return super().get_queryset()[:INLINE_POSTINGS]


class PostingInline(ReadOnlyInline):
    model = Posting
    formset = FirstPostingsFormSet
    fields = ("account", "amount_micros")
    readonly_fields = ("account", "amount_micros")
    verbose_name_plural = f"postings (first {INLINE_POSTINGS}; all in the posting list)"


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "period", "idempotency_key", "created_at", "created_by_label", "reverses"]
    list_filter = ["kind", "period__status"]
    search_fields = ["idempotency_key", "memo"]
    date_hierarchy = "created_at"
    list_select_related = ["period", "reverses"]
    readonly_fields = [f.name for f in JournalEntry._meta.fields] + ["all_postings", "accrual_detail"]
    inlines = [PostingInline]

    @admin.display(description="all postings")
    def all_postings(self, obj):
        url = reverse("admin:ledger_posting_changelist") + f"?entry__id__exact={obj.pk}"
        return format_html('<a href="{}">{} postings</a>', url, obj.postings.count())

    @admin.display(description="accrual detail")
    def accrual_detail(self, obj):
        url = reverse("admin:ledger_accrual_changelist") + f"?journal_entry__id__exact={obj.pk}"
        return format_html('<a href="{}">{} rows</a>', url, obj.accruals.count())


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdmin):
    list_display = ["id", "entry", "account", "amount_micros"]
    list_filter = ["account__kind", "account__currency"]
    list_select_related = ["entry__period", "account"]
    readonly_fields = [f.name for f in Posting._meta.fields]
    raw_id_fields = ["entry", "account"]


@admin.register(Accrual)
class AccrualAdmin(ReadOnlyAdmin):
    list_display = ["id", "period", "program", "contributor", "work", "amount_micros", "baseline_micros",
                    "attributed_micros", "generation_count", "journal_entry"]
    list_filter = ["program"]
    list_select_related = ["period", "program", "contributor", "work", "journal_entry__period"]
    readonly_fields = [f.name for f in Accrual._meta.fields]
    raw_id_fields = ["journal_entry", "contributor", "work"]


# --- programs and terms: new rows only, through the services ------------------------------------------


TERMS_FIELDS = ["effective_from", "currency", "pool_bps", "pool_fixed_micros", "baseline_bps", "top_k", "min_share",
                "payout_threshold_minor"]


def _terms_values(data: dict) -> dict:
    return {
        "currency": data.get("currency"), "pool_bps": data.get("pool_bps"),
        "pool_fixed_micros": data.get("pool_fixed_micros"), "baseline_bps": data.get("baseline_bps") or 0,
        "top_k": data.get("top_k"), "min_share": data.get("min_share") or Decimal(0),
        "payout_threshold_minor": data.get("payout_threshold_minor") or 0,
    }


def _as_validation_error(exc: LedgerError) -> ValidationError:
    field = exc.field if exc.field in [*TERMS_FIELDS, "program", "ai_model", "name"] else None
    return ValidationError({field: exc.message} if field else exc.message)


class TermsForm(forms.ModelForm):
    class Meta:
        model = RoyaltyProgramTerms
        fields = ["program", *TERMS_FIELDS, "note"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            terms_validate(**_terms_values(data))
            terms_effective_from_check(program=data["program"], effective_from=data["effective_from"])
        except LedgerError as exc:
            raise _as_validation_error(exc) from exc
        return data

    def _post_clean(self):
        # The model's own full_clean would ask for a version; the service numbers versions.
        pass


@admin.register(RoyaltyProgramTerms)
class RoyaltyProgramTermsAdmin(admin.ModelAdmin):
    form = TermsForm
    list_display = ["program", "version", "effective_from", "currency", "pool_kind", "pool_bps", "pool_fixed_micros",
                    "baseline_bps", "top_k", "min_share", "payout_threshold_minor", "created_by_label"]
    list_filter = ["program", "pool_kind"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        created = program_terms_create(
            program=data["program"], effective_from=data["effective_from"], note=data.get("note") or "",
            created_by=request.user, **_terms_values(data),
        )
        # The admin logs and redirects with ``obj``: make it the row the service wrote.
        obj.__dict__.update(created.__dict__)


class TermsInline(ReadOnlyInline):
    model = RoyaltyProgramTerms
    fields = ("version", *TERMS_FIELDS, "created_by_label", "created_at")
    readonly_fields = ("version", *TERMS_FIELDS, "created_by_label", "created_at")


class ProgramForm(forms.ModelForm):
    effective_from = forms.DateField()
    currency = forms.CharField(max_length=3)
    pool_bps = forms.IntegerField(required=False, min_value=0)
    pool_fixed_micros = forms.IntegerField(required=False, min_value=0)
    baseline_bps = forms.IntegerField(initial=0, min_value=0)
    top_k = forms.IntegerField(min_value=1)
    min_share = forms.DecimalField(initial=Decimal(0), max_digits=7, decimal_places=6)
    payout_threshold_minor = forms.IntegerField(initial=0, min_value=0)

    class Meta:
        model = RoyaltyProgram
        fields = ["ai_model", "name"]

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                terms_validate(**_terms_values(data))
            except LedgerError as exc:
                raise _as_validation_error(exc) from exc
        return data


@admin.register(RoyaltyProgram)
class RoyaltyProgramAdmin(admin.ModelAdmin):
    list_display = ["name", "ai_model", "created_at", "created_by_label"]
    inlines = [TermsInline]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ProgramForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["ai_model", "name", *TERMS_FIELDS]
        return ["ai_model", "name", "created_at", "created_by_label"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["ai_model", "name", "created_at", "created_by_label"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        created = royalty_program_create(
            ai_model=data["ai_model"], name=data["name"], effective_from=data["effective_from"],
            created_by=request.user, **_terms_values(data),
        )
        # The admin logs and redirects with ``obj``: make it the row the service wrote.
        obj.__dict__.update(created.__dict__)
