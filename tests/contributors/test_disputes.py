"""The same content claimed by a second contributor opens a dispute and flags both claims; catalog admins
resolve it (uphold, split, reject) with exact, audited effects on ownership and status."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from contributors.models import Dispute, Work
from contributors.services import dispute_resolve, ownership_set, work_opt_out
from tests.conftest import make_user
from tests.contributors.conftest import PROSE, owners_of

SAME = f"The shared poem\n{PROSE}".encode()




@pytest.fixture
def admin_user(db):
    return make_user("catalog_admin")


@pytest.fixture
def disputed(ada, bob, register):
    """Ada registered the poem first; Bob registers the same bytes (under another name and title)."""
    original = register(ada, "Poem", data=SAME, name="poem.txt").work
    claim = register(bob, "My poem", data=SAME, name="mine.md")
    return original, claim


def test_duplicate_content_opens_a_dispute_and_flags_both_claims(disputed, ada, bob):
    original, claim = disputed

    original.refresh_from_db()
    dispute = claim.dispute
    assert dispute is not None
    assert (dispute.work, dispute.claim_work, dispute.claimant) == (original, claim.work, bob)
    assert dispute.status == Dispute.Status.OPEN
    assert dispute.sha256 == original.sha256 == claim.work.sha256
    # Both claims are flagged; neither is merged into the other nor dropped.
    assert original.status == claim.work.status == Work.Status.DISPUTED
    assert owners_of(original) == {"Ada": 10_000}
    assert owners_of(claim.work) == {"Bob": 10_000}
    assert AuditEvent.objects.filter(action="dispute.open", object_id=str(dispute.pk)).count() == 1
    assert AuditEvent.objects.filter(action="work.status", after={"status": "disputed"}).count() == 2


def test_upheld_gives_the_work_to_the_claimant_and_retires_the_claim(disputed, admin_user):
    original, claim = disputed

    dispute = dispute_resolve(dispute=claim.dispute, outcome="upheld", actor=admin_user, note="Bob showed drafts")

    original.refresh_from_db()
    claim.work.refresh_from_db()
    assert owners_of(original) == {"Bob": 10_000}
    assert (original.status, claim.work.status) == (Work.Status.ACTIVE, Work.Status.REMOVED)
    assert (dispute.status, dispute.resolved_by, dispute.resolution_note) == ("upheld", admin_user, "Bob showed drafts")
    assert dispute.resolved_at is not None
    # The claim's rows stay (history is never deleted); it is only out of the catalog.
    assert owners_of(claim.work) == {"Bob": 10_000}
    event = AuditEvent.objects.get(action="dispute.resolve")
    assert event.actor == admin_user
    assert [o["name"] for o in event.before["work_owners"]] == ["Ada"]
    assert [o["name"] for o in event.after["work_owners"]] == ["Bob"]
    assert (event.after["work_status"], event.after["claim_work_status"]) == ("active", "removed")


def test_split_gives_the_claim_its_share_and_the_originals_keep_their_proportions(
    ada, bob, make_contributor, register, admin_user
):
    cleo = make_contributor("Cleo")
    original = register(ada, "Song", data=SAME).work
    ownership_set(work=original, shares={ada: 6667, cleo: 3333}, actor=admin_user)
    claim = register(bob, "Song (mine)", data=SAME)

    dispute_resolve(dispute=claim.dispute, outcome="split", actor=admin_user, note="co-written", claimant_bps=2500)

    # 7,500 bp split 6667:3333 by largest remainder is 5000.25 -> 5000 and 2499.75 -> 2500.
    assert owners_of(original) == {"Ada": 5000, "Cleo": 2500, "Bob": 2500}
    assert sum(owners_of(original).values()) == 10_000
    claim.dispute.refresh_from_db()
    assert claim.dispute.claimant_bps == 2500


def test_rejected_leaves_the_original_owners_and_retires_the_claim(disputed, admin_user):
    original, claim = disputed

    dispute_resolve(dispute=claim.dispute, outcome="rejected", actor=admin_user, note="no evidence")

    original.refresh_from_db()
    claim.work.refresh_from_db()
    assert owners_of(original) == {"Ada": 10_000}
    assert (original.status, claim.work.status) == (Work.Status.ACTIVE, Work.Status.REMOVED)
    assert not AuditEvent.objects.filter(action="ownership.set", object_id=str(original.pk)).exclude(
        reason="registered"
    ).exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"outcome": "upheld", "note": "  "}, "resolution_note"),
        ({"outcome": "merged", "note": "x"}, "outcome"),
        ({"outcome": "split", "note": "x"}, "claimant_bps"),
        ({"outcome": "split", "note": "x", "claimant_bps": 10_000}, "claimant_bps"),
        ({"outcome": "split", "note": "x", "claimant_bps": 0}, "claimant_bps"),
    ],
    ids=["no-note", "unknown-outcome", "split-without-share", "split-everything", "split-nothing"],
)
def test_bad_resolutions_are_refused_naming_the_field_and_change_nothing(disputed, admin_user, kwargs, field):
    original, claim = disputed

    with pytest.raises(ValidationError) as excinfo:
        dispute_resolve(dispute=claim.dispute, actor=admin_user, **kwargs)

    assert field in excinfo.value.message_dict
    claim.dispute.refresh_from_db()
    original.refresh_from_db()
    assert claim.dispute.status == Dispute.Status.OPEN
    assert original.status == Work.Status.DISPUTED
    assert owners_of(original) == {"Ada": 10_000}


def test_a_split_that_would_leave_an_owner_with_nothing_is_refused(ada, bob, make_contributor, register, admin_user):
    cleo = make_contributor("Cleo")
    original = register(ada, "Song", data=SAME).work
    ownership_set(work=original, shares={ada: 9999, cleo: 1}, actor=admin_user)
    claim = register(bob, "Song", data=SAME)

    with pytest.raises(ValidationError, match="Cleo would be left with 0 basis points"):
        dispute_resolve(dispute=claim.dispute, outcome="split", actor=admin_user, note="x", claimant_bps=5000)

    assert owners_of(original) == {"Ada": 9999, "Cleo": 1}


def test_a_dispute_is_resolved_once(disputed, admin_user):
    _, claim = disputed
    dispute_resolve(dispute=claim.dispute, outcome="rejected", actor=admin_user, note="first")

    with pytest.raises(ValidationError, match="already resolved"):
        dispute_resolve(dispute=claim.dispute, outcome="upheld", actor=admin_user, note="second")

    assert AuditEvent.objects.filter(action="dispute.resolve").count() == 1


def test_the_original_stays_disputed_until_every_claim_on_it_is_resolved(
    disputed, make_contributor, register, admin_user
):
    original, first_claim = disputed
    cleo = make_contributor("Cleo")
    second_claim = register(cleo, "Also mine", data=SAME)
    assert second_claim.dispute.work == original  # every later claim is against the earliest registration

    dispute_resolve(dispute=first_claim.dispute, outcome="rejected", actor=admin_user, note="no")
    original.refresh_from_db()
    assert original.status == Work.Status.DISPUTED

    dispute_resolve(dispute=second_claim.dispute, outcome="upheld", actor=admin_user, note="yes")
    original.refresh_from_db()
    assert original.status == Work.Status.ACTIVE
    assert owners_of(original) == {"Cleo": 10_000}


def test_an_opt_out_on_the_upheld_claim_carries_over_to_the_work(disputed, bob, admin_user):
    original, claim = disputed
    work_opt_out(work=claim.work, actor=bob.user, requested_by=bob, reason="no AI training")

    dispute_resolve(dispute=claim.dispute, outcome="upheld", actor=admin_user, note="Bob's")

    original.refresh_from_db()
    assert original.opted_out_at is not None
    carried = original.opt_outs.get()
    assert carried.requested_by == bob
    assert "carried over" in carried.reason


def test_content_of_a_removed_registration_can_be_registered_again_without_a_dispute(disputed, admin_user, register):
    original, claim = disputed
    dispute_resolve(dispute=claim.dispute, outcome="upheld", actor=admin_user, note="Bob's")
    # The removed claim no longer counts as a live registration; the original (now Bob's) still does.
    from contributors.services import work_remove

    work_remove(work=original, actor=admin_user, reason="taken down")
    fresh = register(claim.dispute.claimant, "Poem again", data=SAME)

    assert fresh.dispute is None
    assert fresh.work.status == Work.Status.ACTIVE


def test_editing_a_work_into_someone_elses_content_opens_a_dispute_with_the_edit_as_the_claim(ada, bob, register):
    from contributors.services import Content, work_update

    original = register(ada, "Poem", data=SAME).work
    draft = register(bob, "Draft", data=b"something else entirely\n" + PROSE.encode()).work

    result = work_update(work=draft, actor=bob.user, content=Content(data=SAME, field="file", file_name="p.txt"))

    assert result.dispute is not None
    assert (result.dispute.work, result.dispute.claim_work, result.dispute.claimant) == (original, draft, bob)
    draft.refresh_from_db()
    assert draft.status == Work.Status.DISPUTED


def test_the_content_of_a_disputed_work_cannot_be_replaced(disputed, bob):
    from contributors.services import Content, work_update

    _, claim = disputed
    new_content = Content(data=b"new words\n", field="file", file_name="n.txt")

    with pytest.raises(ValidationError, match="cannot be replaced until a catalog admin resolves"):
        work_update(work=claim.work, actor=bob.user, content=new_content)
