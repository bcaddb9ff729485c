"""Builders for the nightly tests: contributors and works through the catalog services, a model with a
royalty program, versions registered with their manifest and a real attribution index (the keyword adapter),
and generations on chosen days."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

import pytest

from tests.royalties.ledger.factories import make_ai_model, make_contributor, make_program

DAY = dt.date(2024, 6, 3)
ADAPTER = "tests.attribution.nightly.keyword_adapter.KeywordAdapter"
VOCABULARY = ["river", "mountain", "forest", "ocean", "desert", "city", "storm", "garden", "castle", "dragon",
              "winter", "harbor"]

_seq = itertools.count(1)


def at(day: dt.date, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


class World:
    """A small catalog, model and generations; every figure a test asserts is derived from these rows."""

    def contributor(self, name: str | None = None):
        return make_contributor(name)

    def work(self, text: str, owners=None, *, title: str | None = None):
        """A text work registered through the catalog service; ``owners``: a contributor or {contributor: bps}."""
        from contributors.services import content_from_text, work_create

        if owners is None:
            owners = self.contributor()
        shares = owners if isinstance(owners, dict) else {owners: 10_000}
        creator = next(iter(shares))
        registration = work_create(created_by=creator, title=title or f"Work {next(_seq)}",
                                   content=content_from_text(text=text), actor=None, owners=shares)
        return registration.work

    def program(self, name: str | None = None, **terms):
        """An AI model and its royalty program (20% revenue share, 10% baseline, top-10 unless overridden)."""
        ai_model = make_ai_model(name)
        return ai_model, make_program(ai_model=ai_model, **terms)

    def version(self, ai_model, works, *, label: str = "v1", vocabulary=None, build: bool = True):
        """A version trained on ``works`` (registered with its manifest), with its index built."""
        from attribution.index_services import attribution_index_build
        from attribution.services.registry import model_version_register

        manifest = ("work_id\n" + "".join(f"{w.pk}\n" for w in works)).encode()
        version, _ = model_version_register(
            ai_model=ai_model, label=label, adapter=ADAPTER, config={"vocabulary": vocabulary or VOCABULARY},
            manifest=manifest, manifest_filename="manifest.csv", actor_label="test",
        )
        if build:
            attribution_index_build(model_version=version, actor_label="test")
            version.refresh_from_db()
        return version

    def generation(self, version, text: str, *, day: dt.date = DAY, revenue_micros: int = 10_000,
                   currency: str = "USD", when: dt.datetime | None = None):
        from attribution.models import Generation

        n = next(_seq)
        return Generation.objects.create(
            model_version=version, external_id=f"gen-{n}", prompt=f"prompt {n}", output_text=text,
            prompt_sha256=hashlib.sha256(f"prompt {n}".encode()).hexdigest(),
            output_sha256=hashlib.sha256(text.encode()).hexdigest(), revenue_micros=revenue_micros,
            currency=currency, generated_at=when or at(day, 12, n % 60),
        )

    def night(self, day: dt.date = DAY, **kwargs):
        from attribution.nightly.services import night_run

        kwargs.setdefault("chunk_size", 3)
        return night_run(day=day, **kwargs)


@pytest.fixture(autouse=True)
def _fresh_scorers():
    """Each test loads its own indexes (ids can repeat across rolled-back tests on SQLite)."""
    from attribution.nightly.scoring import scorer_cache_clear

    scorer_cache_clear()
    yield
    scorer_cache_clear()


@pytest.fixture
def world(db):
    return World()


def accrual_entries(program, day=DAY):
    """The accrual entries (and corrections) posted for (program, day), oldest first."""
    from royalties.ledger.models import JournalEntry
    from royalties.ledger.selectors import accrual_key

    return list(JournalEntry.objects.filter(
        kind=JournalEntry.Kind.ACCRUAL, idempotency_key__startswith=accrual_key(program_id=program.pk, day=day)
    ).order_by("pk"))


def owed(contributor, currency: str = "USD") -> int:
    from royalties.ledger.selectors import contributor_payable_balance

    return contributor_payable_balance(contributor=contributor, currency=currency)
