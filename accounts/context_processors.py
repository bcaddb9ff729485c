from __future__ import annotations

from accounts.roles import CATALOG_ADMIN, CONTRIBUTOR, FINANCE, user_roles


def roles(request) -> dict:
    """Which navigation to show: ``is_contributor``, ``is_finance``, ``is_catalog_admin``."""
    held = user_roles(getattr(request, "user", None))
    return {
        "user_roles": held,
        "is_contributor": CONTRIBUTOR in held,
        "is_finance": FINANCE in held,
        "is_catalog_admin": CATALOG_ADMIN in held,
    }
