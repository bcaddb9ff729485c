from __future__ import annotations

from accounts.roles import CATALOG_ADMIN, CONTRIBUTOR, FINANCE, user_roles

# Every path the main navigation links to; the longest one the current page lives under is marked current.
NAV_PATHS = (
    "/portal/", "/portal/works/", "/portal/earnings/", "/portal/statements/", "/portal/payout-account/",
    "/portal/profile/", "/finance/", "/finance/reconciliation/", "/finance/ledger/", "/admin/", "/catalog/",
)


def roles(request) -> dict:
    """Which navigation to show (``is_contributor``, ``is_finance``, ``is_catalog_admin``) and which link is current."""
    held = user_roles(getattr(request, "user", None))
    path = getattr(request, "path", "") or ""
    under = [p for p in NAV_PATHS if path.startswith(p)]
    return {
        "user_roles": held,
        "is_contributor": CONTRIBUTOR in held,
        "is_finance": FINANCE in held,
        "is_catalog_admin": CATALOG_ADMIN in held,
        "nav_active": max(under, key=len) if under else "",
    }
