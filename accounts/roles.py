"""The three kinds of people, as groups: contributor, finance, catalog_admin.

Access checks ask ``user_has_role``; staff pages answer 404 (never 403) to anyone without the role, so a
URL reveals nothing about what exists behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.http import Http404
from rest_framework.permissions import BasePermission

CONTRIBUTOR = "contributor"
FINANCE = "finance"
CATALOG_ADMIN = "catalog_admin"
ROLES = (CONTRIBUTOR, FINANCE, CATALOG_ADMIN)
# Roles that move money or change the catalog: they must use multi-factor authentication.
STAFF_ROLES = frozenset({FINANCE, CATALOG_ADMIN})

# Model permissions each role receives in the admin, by app label ("*" = every model of the app).
ROLE_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    CONTRIBUTOR: {},
    FINANCE: {
        "payouts": ("view", "add", "change"),
        "ledger": ("view",),
        "contributors": ("view",),
        "attribution": ("view",),
        "audit": ("view",),
    },
    CATALOG_ADMIN: {
        "contributors": ("view", "add", "change", "delete"),
        "attribution": ("view", "add", "change", "delete"),
        "audit": ("view",),
        "ledger": ("view",),
    },
}


def user_roles(user: Any) -> frozenset[str]:
    """The role names a user holds (cached on the user object for the request)."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_royalty_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._royalty_roles = cached
    return cached


def user_has_role(user: Any, *roles: str) -> bool:
    """True when the user holds at least one of ``roles``."""
    return bool(user_roles(user) & set(roles))


def user_is_staff_role(user: Any) -> bool:
    return bool(user_roles(user) & STAFF_ROLES) or bool(getattr(user, "is_superuser", False))


def role_required(*roles: str) -> Callable:
    """View decorator: the view exists only for holders of one of ``roles``; everyone else gets 404."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not user_has_role(request.user, *roles):
                raise Http404
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class HasRole(BasePermission):
    """DRF permission: ``permission_classes = [HasRole.of(FINANCE)]``."""

    roles: tuple[str, ...] = ()

    @classmethod
    def of(cls, *roles: str) -> type[HasRole]:
        return type(f"HasRole_{'_'.join(roles)}", (cls,), {"roles": roles})

    def has_permission(self, request, view) -> bool:
        return user_has_role(request.user, *self.roles)


@transaction.atomic
def roles_sync() -> None:
    """Create the role groups and give each the admin permissions in ROLE_PERMISSIONS (idempotent)."""
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for app_label, actions in ROLE_PERMISSIONS[role].items():
            for action in actions:
                wanted.extend(
                    Permission.objects.filter(content_type__app_label=app_label, codename__startswith=f"{action}_")
                )
        group.permissions.set(wanted)


@transaction.atomic
def role_grant(*, user: Any, role: str, actor: Any = None) -> None:
    """Give ``user`` a role; staff roles also open the admin site to them. Recorded in the audit trail."""
    from audit.services import audit_record

    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    roles_sync()
    before = sorted(user_roles(user))
    user.groups.add(Group.objects.get(name=role))
    if role in STAFF_ROLES and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    user.__dict__.pop("_royalty_roles", None)
    audit_record(
        action="role.grant", obj=user, actor=actor, actor_label="" if actor else "command:grant_role",
        before={"roles": before}, after={"roles": sorted(user_roles(user))},
    )


@transaction.atomic
def role_revoke(*, user: Any, role: str, actor: Any = None) -> None:
    """Take a role away; a user left with no staff role loses the admin site (unless a superuser)."""
    from audit.services import audit_record

    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    before = sorted(user_roles(user))
    user.groups.remove(*Group.objects.filter(name=role))
    user.__dict__.pop("_royalty_roles", None)
    after = sorted(user_roles(user))
    if user.is_staff and not user.is_superuser and not (set(after) & STAFF_ROLES):
        user.is_staff = False
        user.save(update_fields=["is_staff"])
    if before != after:
        audit_record(
            action="role.revoke", obj=user, actor=actor, actor_label="" if actor else "command:grant_role",
            before={"roles": before}, after={"roles": after},
        )


@transaction.atomic
def roles_set(*, user: Any, roles: set[str], actor: Any = None) -> None:
    """Make ``user`` hold exactly ``roles`` (the admin's user form), granting and revoking through the above."""
    held = set(user_roles(user))
    for role in sorted(roles - held):
        role_grant(user=user, role=role, actor=actor)
    for role in sorted(held - roles):
        role_revoke(user=user, role=role, actor=actor)
