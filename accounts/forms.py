"""The sign-up form's extra fields: what a contributor profile needs from the start."""

from __future__ import annotations

from django import forms

from contributors.countries import COUNTRY_CHOICES


class ContributorSignupForm(forms.Form):
    """allauth builds its sign-up form on this one (ACCOUNT_SIGNUP_FORM_CLASS); the adapter saves it."""

    display_name = forms.CharField(
        max_length=200, label="Name to show on your works", widget=forms.TextInput(attrs={"autocomplete": "nickname"})
    )
    legal_name = forms.CharField(
        max_length=200, required=False, label="Legal name (optional)",
        help_text="For payout statements; never shown to other contributors.",
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    country = forms.ChoiceField(choices=COUNTRY_CHOICES, required=False, label="Country (optional)")

    field_order = ["email", "display_name", "legal_name", "country", "password1", "password2"]

    def signup(self, request, user) -> None:
        """Required by allauth; the profile is created in ``AccountAdapter.save_user``, with the user."""
