"""Staff (finance, catalog admins) must use multi-factor authentication on every page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import reverse

from accounts.roles import user_is_staff_role

# Paths a staff user may reach before MFA is set up and used: the login, MFA and logout flows themselves.
# The API is left to its permission classes, which check ``session_used_mfa`` for staff sessions (machines
# call it with keys, and a JSON client must get a JSON answer, not a redirect to a page).
_EXEMPT_PREFIXES = ("/accounts/", "/static/", "/healthz", "/api/", "/webhooks/")


def session_used_mfa(request) -> bool:
    from allauth.account.authentication import get_authentication_records

    return any(record.get("method") == "mfa" for record in get_authentication_records(request, request.user))


class StaffMfaRequiredMiddleware:
    """A staff user without TOTP is sent to set it up; a staff session that skipped MFA is logged out."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(_EXEMPT_PREFIXES)
            and user_is_staff_role(user)
        ):
            from allauth.mfa.utils import is_mfa_enabled

            if not is_mfa_enabled(user):
                messages.info(request, "Your role requires two-factor authentication: set up an authenticator app.")
                return redirect(reverse("mfa_activate_totp") + f"?next={request.path}")
            if not session_used_mfa(request):
                # MFA was enabled after this session began (or the session was made some other way):
                # log in again, with the second factor.
                logout(request)
                messages.info(request, "Sign in again with your password and your authenticator code.")
                return redirect(reverse("account_login") + f"?next={request.path}")
        return self.get_response(request)
