from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.roles import CATALOG_ADMIN, CONTRIBUTOR, FINANCE, user_has_role


def home(request: HttpRequest) -> HttpResponse:
    """The front door: visitors see what the platform is; people are sent to their own area."""
    user = request.user
    if user.is_authenticated:
        if user_has_role(user, CONTRIBUTOR):
            return redirect("/portal/")
        if user_has_role(user, FINANCE):
            return redirect("/finance/")
        if user_has_role(user, CATALOG_ADMIN):
            return redirect("/admin/")
    return render(request, "home.html")
