"""A work's owners always sum to exactly 10,000 basis points: the service refuses anything else, writes
the whole set atomically, records before/after, and PostgreSQL enforces the same at commit."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from contributors.models import Ownership
from contributors.services import bps_scale, ownership_set
from tests.contributors.conftest import owners_of


@pytest.fixture
def work(ada, register):
    return register(ada, "Shared song").work


@pytest.fixture
def cleo(make_contributor):
    return make_contributor("Cleo")


def test_the_owner_set_is_replaced_as_a_whole(work, ada, bob, cleo):
    ownership_set(work=work, shares={ada: 5000, bob: 3000, cleo: 2000}, actor=ada.user)
    assert owners_of(work) == {"Ada": 5000, "Bob": 3000, "Cleo": 2000}

    ownership_set(work=work, shares={bob: 2500, cleo: 7500}, actor=ada.user, reason="Ada sold her share")

    assert owners_of(work) == {"Bob": 2500, "Cleo": 7500}
    last = AuditEvent.objects.filter(action="ownership.set").first()
    assert [o["bps"] for o in last.before["owners"]] == [5000, 3000, 2000]
    assert [(o["name"], o["bps"]) for o in last.after["owners"]] == [("Cleo", 7500), ("Bob", 2500)]
    assert last.reason == "Ada sold her share"
    assert last.actor == ada.user


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ({"ada": 5000, "bob": 4999}, "sum to 9,999 basis points; they must sum to exactly 10,000"),
        ({"ada": 5000, "bob": 5001}, "sum to 10,001 basis points"),
        ({"ada": 10_000, "bob": 0}, "The share of Bob is 0 basis points"),
        ({"ada": 10_001, "bob": -1}, "The share of Ada is 10001 basis points"),
        ({"ada": 5000.0, "bob": 5000}, "must be a whole number of basis points"),
        ({"ada": True, "bob": 9999}, "must be a whole number of basis points"),
        ({}, "at least one owner"),
    ],
    ids=["short-by-one", "over-by-one", "zero-share", "out-of-range", "float", "bool", "empty"],
)
def test_a_set_not_summing_to_10000_is_refused_naming_the_field_and_nothing_changes(work, ada, bob, shares, message):
    people = {"ada": ada, "bob": bob}
    before = owners_of(work)
    events = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        ownership_set(work=work, shares={people[k]: v for k, v in shares.items()}, actor=ada.user)

    assert list(excinfo.value.message_dict) == ["owners"]
    assert message in excinfo.value.message_dict["owners"][0]
    assert owners_of(work) == before
    assert AuditEvent.objects.count() == events


def test_an_unchanged_set_writes_no_audit_event(work, ada):
    events = AuditEvent.objects.count()

    ownership_set(work=work, shares={ada: 10_000}, actor=ada.user)

    assert AuditEvent.objects.count() == events


@given(
    shares=st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=12),
    total=st.integers(min_value=1, max_value=10_000),
)
@settings(max_examples=300, deadline=None)
def test_scaling_a_split_always_sums_exactly_and_keeps_order(shares, total):
    class Owner:
        def __init__(self, pk):
            self.pk = pk

        def __hash__(self):
            return self.pk

    owners = {Owner(i + 1): bps for i, bps in enumerate(shares)}

    scaled = bps_scale(shares=owners, total=total)

    assert sum(scaled.values()) == total
    # Largest remainder: each part is the exact proportional share rounded down or up, never further.
    base = sum(shares)
    for owner, bps in owners.items():
        assert bps * total // base <= scaled[owner] <= bps * total // base + 1


def write_then_commit_check(write) -> None:
    """Run ``write`` in a savepoint and check deferred constraints now, as COMMIT would; a failure rolls the
    savepoint back, so the test's own teardown (which checks constraints too) sees a clean database."""
    with transaction.atomic():
        write()
        connection.cursor().execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_refuses_at_commit_an_owner_set_written_around_the_service(work, ada, bob):
    assert owners_of(work) == {"Ada": 10_000}
    # A raw write that leaves the work at 15,000 bp: a bug, a migration, a psql session.
    with pytest.raises(IntegrityError, match="sums to 15000 basis points"):
        write_then_commit_check(lambda: Ownership.objects.create(work=work, contributor=bob, bps=5000))


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_refuses_a_work_left_without_owners(work):
    assert Ownership.objects.filter(work=work).count() == 1
    with pytest.raises(IntegrityError, match="sums to 0 basis points"):
        write_then_commit_check(lambda: Ownership.objects.filter(work=work).delete())


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_accepts_every_owner_set_the_service_writes(work, ada, bob, make_contributor):
    cleo = make_contributor("Cleo")
    ownership_set(work=work, shares={ada: 1, bob: 9998, cleo: 1}, actor=ada.user)
    ownership_set(work=work, shares={bob: 10_000}, actor=ada.user)

    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # raises if any row event left a bad sum

    assert owners_of(work) == {"Bob": 10_000}
