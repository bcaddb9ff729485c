"""Roles are groups with permissions, assigned by `manage.py grant_role` or in the admin, always audited;
the front door sends each role to its own area."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.roles import CATALOG_ADMIN, CONTRIBUTOR, FINANCE, ROLES, user_roles
from audit.models import AuditEvent
from contributors.models import Contributor
from tests.conftest import login, make_user


def fresh(user):
    user.refresh_from_db()
    user.__dict__.pop("_royalty_roles", None)
    return user


def test_roles_are_groups_with_the_admin_permissions_each_needs(db):
    groups = {g.name: g for g in Group.objects.filter(name__in=ROLES)}

    assert set(groups) == set(ROLES)
    catalog = set(groups[CATALOG_ADMIN].permissions.values_list("codename", flat=True))
    finance = set(groups[FINANCE].permissions.values_list("codename", flat=True))
    assert {"add_work", "change_work", "change_dispute", "view_optout"} <= catalog
    assert "view_work" in finance
    assert "change_work" not in finance
    assert not groups[CONTRIBUTOR].permissions.exists()


def test_grant_role_gives_a_contributor_a_profile_and_staff_the_admin(db, capsys):
    person = make_user()
    staff = make_user()

    call_command("grant_role", person.email, "contributor")
    call_command("grant_role", staff.email.upper(), "catalog_admin")

    assert user_roles(fresh(person)) == {CONTRIBUTOR}
    assert Contributor.objects.filter(user=person).exists()
    assert fresh(staff).is_staff
    assert user_roles(staff) == {CATALOG_ADMIN}
    assert AuditEvent.objects.filter(action="role.grant", actor_label="command:grant_role").count() == 2


def test_grant_role_revoke_takes_the_admin_away(db):
    staff = make_user("finance")

    call_command("grant_role", staff.email, "finance", "--revoke")

    staff = fresh(staff)
    assert user_roles(staff) == frozenset()
    assert not staff.is_staff
    assert AuditEvent.objects.filter(action="role.revoke").exists()


def test_grant_role_refuses_unknown_people_and_roles(db):
    with pytest.raises(CommandError, match="no user with e-mail"):
        call_command("grant_role", "nobody@example.org", "finance")
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("grant_role", make_user().email, "janitor")


def test_a_superuser_assigns_roles_in_the_admin_user_form(client, db):
    boss = make_user(mfa=True)
    boss.is_superuser = boss.is_staff = True
    boss.save()
    person = make_user("contributor")
    login(client, boss)
    url = f"/admin/auth/user/{person.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() or "" for name in ("username", "email", "first_name", "last_name")}
    data |= {"date_joined_0": "2026-01-01", "date_joined_1": "00:00:00", "is_active": "on"}

    response = client.post(url, {**data, "roles": [CONTRIBUTOR, CATALOG_ADMIN]})

    assert response.status_code == 302
    person = fresh(person)
    assert user_roles(person) == {CONTRIBUTOR, CATALOG_ADMIN}
    assert person.is_staff  # a staff role opens the admin
    event = AuditEvent.objects.filter(action="role.grant").first()
    assert (event.actor, event.after["roles"]) == (boss, [CATALOG_ADMIN, CONTRIBUTOR])

    client.post(url, {**data, "roles": [CONTRIBUTOR]})
    person = fresh(person)
    assert user_roles(person) == {CONTRIBUTOR}
    assert not person.is_staff


def test_a_bulk_action_grants_a_role_to_several_users(client, db):
    boss = make_user(mfa=True)
    boss.is_superuser = boss.is_staff = True
    boss.save()
    people = [make_user(), make_user()]
    login(client, boss)

    client.post("/admin/auth/user/", {"action": "grant_finance", "_selected_action": [p.pk for p in people]})

    assert all(user_roles(fresh(p)) == {FINANCE} for p in people)


@pytest.mark.parametrize(
    ("role", "destination"),
    [(CONTRIBUTOR, "/portal/"), (FINANCE, "/finance/"), (CATALOG_ADMIN, "/admin/")],
)
def test_the_front_door_sends_each_role_to_its_area(client, db, role, destination):
    login(client, make_user(role))

    assert client.get("/")["Location"] == destination


def test_visitors_see_the_front_page(client, db):
    page = client.get("/")

    assert page.status_code == 200
    assert "Register as a contributor" in page.content.decode()
