"""The audit trail is append-only, names who acted (a person or a command), and is read per object."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from audit.selectors import audit_event_list_for, audit_event_list_for_many
from audit.services import audit_record
from tests.conftest import login, make_user


def test_events_cannot_be_changed_or_deleted(db):
    event = audit_record(action="work.create", object_type="contributors.work", object_id=1, actor="system")

    event.action = "work.delete"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "work.create"


def test_the_actor_is_a_person_or_a_labelled_command(db):
    person = make_user()

    by_person = audit_record(action="a", object_type="t", object_id=1, actor=person)
    by_command = audit_record(action="b", object_type="t", object_id=1, actor="command:import_catalog")
    by_nobody = audit_record(action="c", object_type="t", object_id=1)

    assert (by_person.actor, by_person.actor_label) == (person, person.email)
    assert (by_command.actor, by_command.actor_label) == (None, "command:import_catalog")
    assert by_nobody.actor_label == "system"


def test_history_of_one_object_and_of_several(db):
    one, two = make_user(), make_user()
    audit_record(action="role.grant", obj=one, actor="test")
    audit_record(action="role.grant", obj=two, actor="test")
    audit_record(action="role.revoke", obj=one, actor="test")

    assert [e.action for e in audit_event_list_for(obj=one)] == ["role.revoke", "role.grant"]
    assert audit_event_list_for_many(objects=[one, two]).count() == 3
    assert audit_event_list_for_many(objects=[]).count() == 0


def test_catalog_admins_read_the_trail_in_the_admin_but_cannot_edit_it(client, db):
    event = audit_record(action="work.create", object_type="contributors.work", object_id=7, actor="system")
    login(client, make_user("catalog_admin"))

    listing = client.get("/admin/audit/auditevent/")
    change = client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"action": "tampered"})

    assert listing.status_code == 200
    assert "work.create" in listing.content.decode()
    assert change.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == "work.create"
