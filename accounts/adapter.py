"""allauth adapter: a new account and its contributor profile (with the contributor role) are one write."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.db import transaction


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        if not commit:
            return super().save_user(request, user, form, commit=False)
        from contributors.services import contributor_register

        with transaction.atomic():
            user = super().save_user(request, user, form, commit=True)
            data = form.cleaned_data
            contributor_register(
                user=user,
                display_name=data.get("display_name") or (user.email or "").split("@")[0],
                legal_name=data.get("legal_name") or "",
                country=data.get("country") or "",
                actor=user,
            )
        return user
