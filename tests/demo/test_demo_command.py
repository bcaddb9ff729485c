"""`manage.py demo --quick` runs the whole story on the test database, and a second run creates nothing.

Real parts throughout: the catalog services, local training of the reference models, generations sent over
HTTP to this site's REST API with an API key, the nightly job, the ledger, the fake Stripe server (the test
session's, which the demo finds listening at STRIPE_API_BASE), the payout services.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.roles import FINANCE
from attribution.models import (
    AIModel,
    ApiKey,
    Attribution,
    AttributionRun,
    Generation,
    ManifestEntry,
    ModelVersion,
)
from audit.models import AuditEvent
from contributors.models import Contributor, Dispute, OptOut, Ownership, Work
from demo.corpus import ADA, DISPUTED_COPY_TITLE, ESSAY_TITLE, FINANCE_A, FINANCE_B, HEDY, OPTED_OUT_TITLE
from payouts.models import ConnectedAccount, Payout, PayoutExclusion, PayoutRun, Statement
from royalties.ledger.models import Accrual, JournalEntry, Posting
from royalties.ledger.selectors import contributor_payable_balance

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

COUNTED = [Contributor, Work, Ownership, OptOut, Dispute, AIModel, ModelVersion, ManifestEntry, ApiKey, Generation,
           AttributionRun, Attribution, JournalEntry, Posting, Accrual, ConnectedAccount, PayoutRun, Payout,
           PayoutExclusion, Statement, AuditEvent]


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


def run_demo() -> str:
    out = io.StringIO()
    call_command("demo", quick=True, threads=1, stdout=out)
    return out.getvalue()


def test_the_demo_tells_the_whole_story_and_a_second_run_creates_nothing(fake_stripe, settings):
    settings.PAYOUTS_EXECUTION_THREADS = 2
    first = run_demo()
    after_first = counts()

    # people and catalog: co-owned works, one opted out, the duplicate upload waiting in an open dispute
    essay = Work.objects.get(title=ESSAY_TITLE)
    dispute = Dispute.objects.get()
    assert (dispute.status, dispute.work_id, dispute.claim_work.title) == ("open", essay.pk, DISPUTED_COPY_TITLE)
    assert {w.kind for w in Work.objects.all()} == {"text", "code", "image"}
    assert Work.objects.filter(ownerships__bps__lt=10_000).distinct().count() >= 3
    opted_out = Work.objects.get(title=OPTED_OUT_TITLE)
    assert opted_out.opted_out_at is not None

    # models: every manifest leaves out the opted-out work and the claim copy; both versions are indexed
    versions = list(ModelVersion.objects.select_related("ai_model"))
    assert {v.ref for v in versions} == {"storyteller@v1", "digit-painter@v1"}
    assert all(v.index_path and v.index_built_at for v in versions)
    in_manifests = set(ManifestEntry.objects.values_list("work_id", flat=True))
    assert opted_out.pk not in in_manifests
    assert dispute.claim_work_id not in in_manifests
    assert essay.pk in in_manifests

    # generations: logged over the API with the models' keys, some near-copies of named works
    generations = Generation.objects.all()
    assert generations.count() == 32
    assert not generations.filter(api_key__isnull=True).exists()
    assert set(ApiKey.objects.values_list("ai_model__name", flat=True)) == {"storyteller", "digit-painter"}
    assert all(key.last_used_at for key in ApiKey.objects.all())  # the keys were presented over HTTP
    copies = [g for g in generations if "near_copy_of_work" in g.metadata]
    assert len(copies) == 8
    # the night credits each near-copy's source work (copy detection or the top-k scores find it)
    for generation in copies:
        credited = set(Attribution.objects.filter(generation=generation).values_list("work_id", flat=True))
        assert generation.metadata["near_copy_of_work"] in credited, generation.external_id

    # every night (two days of traffic) posted one balanced accrual per program, explained by its accrual rows
    assert list(AttributionRun.objects.values_list("status", flat=True)) == ["completed", "completed"]
    assert JournalEntry.objects.filter(kind="accrual").count() == 2 * 2
    days = sorted({g.generated_at.date() for g in generations})
    assert len(days) == 2
    assert not Generation.objects.filter(attributed_at__isnull=True).exists()
    call_command("check_ledger", stdout=io.StringIO())

    # payouts: A created, B approved, executed; every paid payout has its statement, whose transfer it is
    run = PayoutRun.objects.get()
    assert (run.created_by.username, run.approved_by.username, run.status) == (FINANCE_A, FINANCE_B, "completed")
    assert "may not approve it" in first  # A tried to approve their own run and was refused
    paid = list(run.payouts.filter(status="paid"))
    assert paid
    for payout in paid:
        assert payout.statement.transfer_micros == payout.amount_micros
        # what stays owed is the sub-cent remainder (and anything below the threshold)
        assert contributor_payable_balance(contributor=payout.contributor, currency=run.currency) == (
            payout.remainder_micros)
    assert run.exclusions.filter(contributor__user__email=HEDY, reason="no_account").exists()
    assert Payout.objects.filter(contributor__user__email=ADA, status="paid").exists()
    assert run.reconciliations.filter(mismatch_count=0).exists()

    # the summary names the people to log in as, the staff's TOTP secrets and how to get a code
    assert "demo-royalties-2026" in first
    assert "manage.py demo_totp" in first

    # when: the demo runs again
    second = run_demo()

    # then: nothing new anywhere (not even an audit event), and it says what it kept
    assert counts() == after_first
    assert "already trained on these works" in second
    assert f"the night of {run.as_of} is already posted" in second
    assert f"run #{run.pk} of" in second
    call_command("check_ledger", stdout=io.StringIO())


def test_the_demo_refuses_to_pay_through_a_remote_stripe(settings, db):
    from django.core.management.base import CommandError

    settings.STRIPE_API_BASE = "https://api.stripe.com"

    with pytest.raises(CommandError, match="the demo pays only through the local fake Stripe server"):
        call_command("demo", quick=True, stdout=io.StringIO())

    assert Work.objects.count() == 0  # refused before anything was written


def test_the_demo_says_what_is_wrong_when_the_stripe_port_is_taken_by_something_else(settings, db):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from django.core.management.base import CommandError

    squatter = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)  # answers 501 to everything
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{squatter.server_address[1]}"
    try:
        with pytest.raises(CommandError, match="what listens there is no Stripe: GET /v1/balance answered 501"):
            call_command("demo", quick=True, stdout=io.StringIO())
    finally:
        squatter.shutdown()
        squatter.server_close()
    assert Work.objects.count() == 0


def test_finance_roles_in_the_demo_are_two_different_people(db):
    from accounts.roles import user_has_role
    from demo.services.people import demo_people_ensure

    users = demo_people_ensure(say=lambda line: None)

    assert users[FINANCE_A] != users[FINANCE_B]
    assert user_has_role(users[FINANCE_A], FINANCE)
    assert user_has_role(users[FINANCE_B], FINANCE)
