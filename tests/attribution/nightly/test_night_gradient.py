"""A night over a gradient (white-box) index: the generic torch-module adapter with a tiny model, through the
real engine. The stored rows are exactly what the engine ranks for each generation."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from attribution.models import Attribution, AttributionRun
from royalties.ledger.models import Accrual
from tests.attribution.nightly.conftest import accrual_entries

CONFIG = {
    "module": "tests.attribution.adapters.helpers.TinyRegressor",
    "module_kwargs": {"hidden": 4},
    "collate_works": "tests.attribution.adapters.helpers.collate_works",
    "collate_generations": "tests.attribution.adapters.helpers.collate_generations",
    "index": {"projection_dim": 16, "seed": 3},
}


@pytest.fixture
def checkpoint(tmp_path):
    import torch

    from tests.attribution.adapters.helpers import TinyRegressor

    torch.manual_seed(0)
    torch.save(TinyRegressor(hidden=4).state_dict(), tmp_path / "model.pt")
    return tmp_path


def test_a_night_over_a_gradient_index_stores_the_engines_top_k(world, checkpoint):
    from attribution.adapters.scoring import attribute_generations
    from attribution.index_services import attribution_index_build, attribution_index_load, generation_inputs
    from attribution.services.registry import model_version_register

    owners = [world.contributor() for _ in range(3)]
    texts = ["short", "a somewhat longer text about rivers", "zzzz zzzz zzzz", "Mixed CASE words, and commas!",
             "the quick brown fox jumps over the lazy dog", "0123456789"]
    works = [world.work(t, owners[i % 3]) for i, t in enumerate(texts)]
    ai_model, program = world.program(pool_bps=2_500, baseline_bps=500, top_k=3)
    version, _ = model_version_register(
        ai_model=ai_model, label="grad", adapter="attribution.adapters.torch_module.TorchModuleAdapter",
        checkpoint_uri=f"file://{checkpoint}", config=CONFIG,
        manifest=("work_id\n" + "".join(f"{w.pk}\n" for w in works)).encode(), manifest_filename="m.csv",
    )
    attribution_index_build(model_version=version, actor_label="test")
    version.refresh_from_db()
    gens = [world.generation(version, t, revenue_micros=10_000 * (i + 1))
            for i, t in enumerate(["rivers and foxes", "zzzz", "A", "lazy dog text", "numbers 42 and 7"])]

    run = world.night(chunk_size=2)

    assert run.status == AttributionRun.Status.COMPLETED, run.errors
    loaded = attribution_index_load(model_version=version)
    expected = attribute_generations(loaded.adapter, loaded.index, generation_inputs(gens), 3,
                                     copy_index=loaded.copy_index)
    for gen, result in zip(gens, expected, strict=True):
        rows = list(Attribution.objects.filter(generation=gen).order_by("rank"))
        assert [(r.work_id, r.rank) for r in rows] == [(w.work_id, i) for i, w in enumerate(result.works, 1)]
        assert [r.score for r in rows] == pytest.approx([w.score for w in result.works], rel=1e-5, abs=1e-6)
    [entry] = accrual_entries(program)
    assert Accrual.objects.filter(journal_entry=entry).aggregate(s=Sum("amount_micros"))["s"] == (
        sum(g.revenue_micros for g in gens) * 2_500 // 10_000
    )
    assert run.timings["scoring"] > 0
