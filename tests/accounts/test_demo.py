"""`manage.py demo` loads people of every role and a small catalog, and running it again changes nothing."""

from __future__ import annotations

from django.core.management import call_command

from accounts.roles import user_roles
from audit.models import AuditEvent
from contributors.models import Dispute, Ownership, Work


def test_demo_people_can_log_in_with_mandatory_verification(client, settings, db):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    call_command("demo")

    response = client.post("/accounts/login/", {"login": "ada@demo.example", "password": "demo-royalties-2026"})

    assert response["Location"] == "/"
    assert client.get("/portal/").status_code == 200


def test_demo_loads_people_and_a_catalog_idempotently(db, capsys):
    call_command("demo")
    counts = (Work.objects.count(), Dispute.objects.count(), AuditEvent.objects.count())
    call_command("demo")

    assert (Work.objects.count(), Dispute.objects.count(), AuditEvent.objects.count()) == counts
    assert counts[0] == 5
    assert Dispute.objects.get().status == "open"
    assert {w.kind for w in Work.objects.all()} == {"text", "code", "image"}
    shared = Work.objects.get(title="On teaching machines to write programs")
    assert sorted(Ownership.objects.filter(work=shared).values_list("bps", flat=True)) == [4000, 6000]
    ada = Work.objects.get(title="Punched-card pattern").created_by.user
    assert user_roles(ada) == {"contributor"}
    assert "demo-royalties-2026" in capsys.readouterr().out
