"""Forms of the finance pages: they parse and validate input; the services decide and write."""

from __future__ import annotations

from django import forms
from django.conf import settings

from payouts.models import Payout, PayoutExclusion, PayoutRun
from royalties.ledger.models import Account, JournalEntry


class PayoutRunCreateForm(forms.Form):
    currency = forms.RegexField(
        regex=r"^[A-Za-z]{3}$", max_length=3, initial=lambda: settings.ROYALTIES_CURRENCY,
        help_text="Three-letter ISO 4217 code: the run pays balances in this currency.",
        error_messages={"invalid": "Enter a three-letter currency code, such as USD."},
    )
    as_of = forms.DateField(
        required=False, label="Balances as of", widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The last ledger day whose postings count (UTC). Empty: today.",
    )
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                           help_text="Shown to the approver, e.g. the month being paid.")


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             error_messages={"required": "Say why, for the audit trail."})


class PayoutFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Payout.Status.choices])


class ExclusionFilterForm(forms.Form):
    reason = forms.ChoiceField(required=False, choices=[("", "Any reason"), *PayoutExclusion.Reason.choices])


class RunFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *PayoutRun.Status.choices])


class LedgerEntryFilterForm(forms.Form):
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *JournalEntry.Kind.choices])
    day_from = forms.DateField(required=False, label="From day", widget=forms.DateInput(attrs={"type": "date"}))
    day_to = forms.DateField(required=False, label="To day", widget=forms.DateInput(attrs={"type": "date"}))
    account = forms.IntegerField(required=False, min_value=1, label="Account #")
    contributor = forms.IntegerField(required=False, min_value=1, label="Contributor #")
    q = forms.CharField(required=False, max_length=200, label="Key or memo contains")

    def clean(self):
        data = super().clean()
        if data.get("day_from") and data.get("day_to") and data["day_from"] > data["day_to"]:
            self.add_error("day_to", "The last day comes before the first.")
        return data


class LedgerAccountFilterForm(forms.Form):
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *Account.Kind.choices])
    currency = forms.RegexField(regex=r"^[A-Za-z]{3}$", required=False, max_length=3,
                                error_messages={"invalid": "Enter a three-letter currency code."})
    contributor = forms.IntegerField(required=False, min_value=1, label="Contributor #")
