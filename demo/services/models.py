"""The demo's two generative models: trained locally on the catalog, registered, paid for, indexed.

- ``storyteller``: the reference byte-level GPT, trained on the text and code works;
- ``digit-painter``: the reference conditional VAE, trained on the handwritten-digit images.

Each is trained once per training set: the checkpoint folder is named after a fingerprint of the works (content
hashes and captions) and the training plan, so a second run finds it and trains nothing. The version's manifest
is exactly the training set, the opted-out work and the dispute's claim copy left out. Torch is imported only
inside the functions that train or load.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from attribution.models import AIModel, ModelVersion
from contributors.models import Work
from demo.services.catalog import demo_training_works

ACTOR = "command:demo"
Say = Callable[[str], None]


@dataclass(frozen=True)
class TrainingPlan:
    epochs: int
    model_config: dict[str, int] = field(default_factory=dict)
    batch_size: int = 32
    learning_rate: float = 3e-3
    seed: int = 0


@dataclass(frozen=True)
class DemoModel:
    name: str
    modality: str
    adapter: str
    kinds: tuple[str, ...]
    full: TrainingPlan
    quick: TrainingPlan
    # Royalty terms: share of revenue pooled for contributors, part of the pool spread over the whole manifest,
    # how many works a generation pays, and the smallest payout (minor units).
    pool_bps: int
    baseline_bps: int
    top_k: int
    payout_threshold_minor: int
    label: str = "v1"

    @property
    def program_name(self) -> str:
        return f"{self.name} contributor royalties"


# The text model reads 128-byte windows: four times cheaper per step than 256, and the demo's near-copies and
# prompts fit. About 700 steps: a few minutes on two busy cores; the samples read like babbled English.
STORYTELLER = DemoModel(
    name="storyteller", modality="text", adapter="attribution.adapters.reference_text.ReferenceTextAdapter",
    kinds=("text", "code"),
    full=TrainingPlan(epochs=30, model_config={"block_size": 128, "n_layer": 2, "n_head": 4, "n_embd": 64}),
    quick=TrainingPlan(epochs=2, model_config={"block_size": 64, "n_layer": 1, "n_head": 2, "n_embd": 32}),
    pool_bps=4000, baseline_bps=2000, top_k=5, payout_threshold_minor=500,
)
DIGIT_PAINTER = DemoModel(
    name="digit-painter", modality="image", adapter="attribution.adapters.reference_image.ReferenceImageAdapter",
    kinds=("image",),
    full=TrainingPlan(epochs=40, model_config={"hidden": 128, "latent": 8}, batch_size=64),
    quick=TrainingPlan(epochs=5, model_config={"hidden": 32, "latent": 4}, batch_size=32),
    pool_bps=5000, baseline_bps=1000, top_k=5, payout_threshold_minor=500,
)
DEMO_MODELS = (STORYTELLER, DIGIT_PAINTER)


@dataclass
class ModelOutcome:
    model: DemoModel
    version: ModelVersion
    checkpoint_dir: Path
    trained: bool
    registered: bool
    indexed: bool
    timings: dict[str, float]


def work_training_input(work: Work):
    """A catalog work as the adapters' ``WorkInput``, captioned as the index build captions it."""
    from attribution.adapters.base import WorkInput

    return WorkInput(
        id=work.pk, kind=work.kind, text=work.text_body, path=work.file.path if work.file else None,
        mime_type=work.mime_type, sha256=work.sha256,
        title=" ".join(part for part in (work.title, work.description) if part),
    )


def training_fingerprint(*, model: DemoModel, plan: TrainingPlan, works: list[Work]) -> str:
    """What a checkpoint was trained from: the works' content and captions, and the plan (not database ids)."""
    material = {
        "model": model.name, "adapter": model.adapter, "plan": asdict(plan),
        "works": sorted([w.sha256, w.title, w.description] for w in works),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _progress(say: Say, name: str, started: float) -> Callable[[int, int, float], None]:
    every = {"last": -1}

    def report(step: int, total: int, loss: float) -> None:
        tenth = step * 10 // total
        if tenth != every["last"]:
            every["last"] = tenth
            say(f"  {name}: step {step}/{total}, loss {loss:.3f}, {time.perf_counter() - started:.0f}s")

    return report


def _train(*, model: DemoModel, plan: TrainingPlan, works: list[Work], out: Path, say: Say) -> None:
    """Train into ``<out>.partial`` and rename it, so an interrupted run never leaves a half checkpoint."""
    inputs = [work_training_input(w) for w in works]
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    started = time.perf_counter()
    progress = _progress(say, model.name, started)
    if model is STORYTELLER:
        from attribution.adapters.reference_text import ByteGPTConfig, train_reference_text_model

        result = train_reference_text_model(
            inputs, partial, epochs=plan.epochs, seed=plan.seed, progress=progress,
            model_config=ByteGPTConfig(**plan.model_config), batch_size=plan.batch_size,
            learning_rate=plan.learning_rate,
        )
    else:
        from attribution.adapters.reference_image import DigitVAEConfig, train_reference_image_model

        result = train_reference_image_model(
            inputs, partial, epochs=plan.epochs, seed=plan.seed, progress=progress,
            model_config=DigitVAEConfig(**plan.model_config), batch_size=plan.batch_size,
            learning_rate=plan.learning_rate,
        )
    partial.rename(out)
    say(f"  {model.name}: trained on {result.n_works} works, {result.steps} steps, final loss "
        f"{result.final_loss:.3f}, {result.seconds:.0f}s")


def _manifest_csv(works: list[Work]) -> bytes:
    return ("work_id,sha256\n" + "".join(f"{w.pk},{w.sha256}\n" for w in works)).encode()


def _version(*, model: DemoModel, checkpoint_uri: str, works: list[Work], say: Say) -> tuple[ModelVersion, bool]:
    """The demo version of ``model``, registered with its manifest unless it exists."""
    from attribution.services.registry import ai_model_create, model_version_register

    ai_model = AIModel.objects.filter(name=model.name).first() or ai_model_create(
        name=model.name, modality=model.modality, owner_team="Demo model service", actor_label=ACTOR)
    version = ModelVersion.objects.filter(ai_model=ai_model, label=model.label).select_related("ai_model").first()
    if version is not None:
        return version, False
    version, report = model_version_register(
        ai_model=ai_model, label=model.label, adapter=model.adapter, checkpoint_uri=checkpoint_uri,
        manifest=_manifest_csv(works), manifest_filename="training-manifest.csv", actor_label=ACTOR,
    )
    assert version is not None  # not a dry run
    assert report is not None
    say(f"  registered {version.ref} with a training manifest of {report.added} works "
        f"(sha256 {report.manifest_sha256[:12]}…)")
    return version, True


def _program(*, model: DemoModel, ai_model: AIModel, effective_from: dt.date, say: Say) -> None:
    from royalties.ledger.selectors import program_for_ai_model
    from royalties.ledger.services import royalty_program_create

    if program_for_ai_model(ai_model=ai_model) is not None:
        return
    program = royalty_program_create(
        ai_model=ai_model, name=model.program_name, effective_from=effective_from,
        currency=settings.ROYALTIES_CURRENCY, pool_bps=model.pool_bps, baseline_bps=model.baseline_bps,
        top_k=model.top_k, payout_threshold_minor=model.payout_threshold_minor, created_by_label=ACTOR,
    )
    say(f"  royalty program “{program.name}”: {model.pool_bps / 100:g}% of revenue, "
        f"{model.baseline_bps / 100:g}% of that spread over the manifest, top {model.top_k} works")


def _index_current(version: ModelVersion) -> bool:
    from attribution.index_services import BUILD_FILE, attribution_index_check

    if not version.index_path or not (Path(version.index_path) / BUILD_FILE).is_file():
        return False
    return not attribution_index_check(model_version=version)


def _index(*, version: ModelVersion, say: Say) -> bool:
    from attribution.index_services import attribution_index_build

    if _index_current(version):
        return False
    started = time.perf_counter()
    last = {"tenth": -1}

    def progress(stage: str, done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if stage == "featurise" and tenth != last["tenth"]:
            last["tenth"] = tenth
            say(f"  {version.ref}: index {done}/{total} works, {time.perf_counter() - started:.0f}s")

    result = attribution_index_build(model_version=version, progress=progress, actor_label=ACTOR)
    say(f"  {version.ref}: {result.meta['method']} index of {result.meta['manifest_count']} works built in "
        f"{result.meta['duration_seconds']:.0f}s")
    return True


def demo_model_ensure(*, model: DemoModel, quick: bool, day: dt.date, say: Say) -> ModelOutcome:
    """Train (unless trained), register the version with its manifest, the royalty program, and the index."""
    plan = model.quick if quick else model.full
    works = demo_training_works(kinds=model.kinds)
    if not works:
        raise RuntimeError(f"no {'/'.join(model.kinds)} works in the demo catalog to train {model.name} on")
    fingerprint = training_fingerprint(model=model, plan=plan, works=works)
    relative = Path("demo") / f"{model.name}-{fingerprint[:16]}"
    out = Path(settings.ROYALTIES_MODEL_DIR) / relative
    timings: dict[str, float] = {}

    started = time.perf_counter()
    trained = not (out / "config.json").is_file()
    if trained:
        say(f"  {model.name}: training on {len(works)} works ({'quick' if quick else 'full'} plan: "
            f"{plan.epochs} epochs, {plan.model_config})")
        out.parent.mkdir(parents=True, exist_ok=True)
        _train(model=model, plan=plan, works=works, out=out, say=say)
    else:
        say(f"  {model.name}: checkpoint {relative} already trained on these works")
    timings["train"] = time.perf_counter() - started

    started = time.perf_counter()
    version, registered = _version(model=model, checkpoint_uri=str(relative), works=works, say=say)
    _program(model=model, ai_model=version.ai_model, effective_from=day, say=say)
    timings["register"] = time.perf_counter() - started

    started = time.perf_counter()
    indexed = _index(version=version, say=say)
    if not indexed:
        say(f"  {version.ref}: attribution index is current")
    timings["index"] = time.perf_counter() - started
    return ModelOutcome(model=model, version=version, checkpoint_dir=out, trained=trained, registered=registered,
                        indexed=indexed, timings=timings)


def demo_models_ensure(*, quick: bool, day: dt.date, say: Say) -> list[ModelOutcome]:
    return [demo_model_ensure(model=m, quick=quick, day=day, say=say) for m in DEMO_MODELS]


def demo_checkpoint_load(outcome: ModelOutcome) -> Any:
    """The trained network of a demo model (for playing the model service)."""
    if outcome.model is STORYTELLER:
        from attribution.adapters.reference_text import load_reference_text_model

        return load_reference_text_model(outcome.checkpoint_dir, model_version_label=outcome.version.ref)
    from attribution.adapters.reference_image import load_reference_image_model

    return load_reference_image_model(outcome.checkpoint_dir, model_version_label=outcome.version.ref)
