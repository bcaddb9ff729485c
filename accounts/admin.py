"""The admin's user pages assign roles through accounts.roles (audited, staff flag kept in step), and the
admin's own password-only login page is replaced by the site's login, which asks staff for their TOTP code.
"""

from __future__ import annotations

from functools import wraps

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.views import redirect_to_login
from django.http import Http404

from accounts.roles import ROLES, role_grant, role_revoke, roles_set, user_roles

User = get_user_model()


def _site_login(view):
    """Anonymous visitors go to the site's (MFA-aware) login; signed-in non-staff get 404, not a hint."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.GET.get("next") or "/admin/")
        if not (request.user.is_active and request.user.is_staff):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped


admin.site.login = _site_login(admin.site.login)
admin.site.site_header = "Contributor Royalties: catalog administration"
admin.site.site_title = "Contributor Royalties admin"
admin.site.index_title = "Catalog, people and the audit trail"


class RoleUserChangeForm(UserAdmin.form):
    roles = forms.MultipleChoiceField(
        choices=[(r, r) for r in ROLES], required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Staff roles (finance, catalog_admin) open the admin site and require two-factor authentication.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["roles"].initial = sorted(user_roles(self.instance))


def _role_action(role: str, grant: bool):
    def action(modeladmin, request, queryset):
        for user in queryset:
            (role_grant if grant else role_revoke)(user=user, role=role, actor=request.user)
        verb = "granted to" if grant else "revoked from"
        messages.success(request, f"Role {role} {verb} {queryset.count()} user(s).")

    action.__name__ = f"{'grant' if grant else 'revoke'}_{role}"
    action.short_description = f"{'Grant' if grant else 'Revoke'} role: {role}"
    return action


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class RoleUserAdmin(UserAdmin):
    form = RoleUserChangeForm
    list_display = ["username", "email", "roles_display", "is_staff", "is_active", "last_login"]
    list_filter = ["groups", "is_staff", "is_superuser", "is_active"]
    actions = [_role_action(role, grant) for role in ROLES for grant in (True, False)]
    # Roles are the groups; they are edited through the "roles" field so that every change is audited and
    # the staff flag follows. The raw group and permission widgets would bypass both.
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Roles", {"fields": ("roles",)}),
        ("Status", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )

    @admin.display(description="Roles")
    def roles_display(self, obj) -> str:
        return ", ".join(sorted(user_roles(obj))) or "—"

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if "roles" in form.cleaned_data:
            roles_set(user=obj, roles=set(form.cleaned_data["roles"]), actor=request.user)
