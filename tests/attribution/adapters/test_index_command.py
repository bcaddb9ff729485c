"""manage.py build_attribution_index: build, record, score, and refuse an index that no longer matches."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command

from attribution.index_services import (
    IndexIntegrityError,
    IndexMissingError,
    IndexStaleError,
    attribution_index_build,
    attribution_index_load,
    generation_inputs,
    manifest_hash,
)
from attribution.models import AIModel, Generation, ManifestEntry, ModelVersion
from audit.models import AuditEvent
from contributors.models import Work
from tests.attribution.adapters.corpus import make_texts, plant_copy

pytestmark = pytest.mark.django_db
HF = "attribution.adapters.hf_causal_lm.HFCausalLMAdapter"
REF_TEXT = "attribution.adapters.reference_text.ReferenceTextAdapter"
RETRIEVAL_IMAGE = "attribution.adapters.retrieval.ImageRetrievalAdapter"


@pytest.fixture(autouse=True)
def index_dir(settings, tmp_path):
    settings.ROYALTIES_INDEX_DIR = tmp_path / "indexes"
    return settings.ROYALTIES_INDEX_DIR


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _text_work(text: str, n: int) -> Work:
    return Work.objects.create(
        kind="text",
        title=f"Story {n}",
        text_body=text,
        size_bytes=len(text.encode()),
        mime_type="text/plain",
        sha256=_sha(text.encode()),
    )


def _version(name: str, adapter: str, checkpoint: str, works, config=None, modality="text") -> ModelVersion:
    ai_model = AIModel.objects.create(name=name, modality=modality)
    version = ModelVersion.objects.create(
        ai_model=ai_model, label="v1", adapter=adapter, checkpoint_uri=checkpoint, config=config or {}
    )
    ManifestEntry.objects.bulk_create(ManifestEntry(model_version=version, work=w, sha256=w.sha256) for w in works)
    return version


def _generation(version: ModelVersion, n: int, prompt: str, output: str, **extra) -> Generation:
    return Generation.objects.create(
        model_version=version,
        external_id=f"g{n}",
        prompt=prompt,
        output_text=output,
        prompt_sha256=_sha(prompt.encode()),
        output_sha256=_sha(output.encode()),
        revenue_micros=1_000,
        currency="USD",
        generated_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        **extra,
    )


def _run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("build_attribution_index", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_hf_gpt2_build_and_score_round_trip_through_the_command(tiny_gpt2_dir):
    from attribution.adapters.scoring import attribute_generations
    from attribution.engine import GradientIndex

    # given a GPT-2 version trained (here: initialised) on 20 works
    texts = make_texts(20, seed=21, sentences=(2, 3))
    works = [_text_work(t, i) for i, t in enumerate(texts)]
    version = _version("tinygpt", HF, tiny_gpt2_dir, works, config={"index": {"projection_dim": 256}})
    # when the command builds its index
    out, err = _run("tinygpt@v1")
    # then the version records where the index is, its checksum and what it was built from
    version.refresh_from_db()
    assert "gradient index of 20 works" in out
    assert "parameters covered 100.0%" in out
    assert "featurise" in err  # the progress bar
    assert Path(version.index_path).is_dir()
    assert len(version.index_checksum) == 64
    assert version.index_built_at is not None
    meta = version.index_meta
    assert meta["method"] == "gradient"
    assert meta["manifest_hash"] == manifest_hash(model_version=version)[0]
    assert meta["manifest_count"] == 20
    assert meta["projection_dim"] == 256
    assert meta["seed"] == 0
    assert meta["fisher"] == "sampled"  # the platform default for adapters that can draw their targets
    assert meta["warnings"] == []
    # GPT-2's Conv1D layers are projected like linear layers, and the tied embedding/head counts once.
    coverage = meta["coverage"]
    assert coverage["share"] == pytest.approx(1.0)
    blocks = {b["name"]: b for b in coverage["blocks"]}
    assert blocks["transformer.h.0.attn.c_attn.weight"]["method"] == "lowrank"
    assert sorted(blocks["transformer.wte.weight"]["modules"]) == ["lm_head", "transformer.wte"]
    assert "lm_head.weight" not in blocks
    # the build is on the audit trail
    event = AuditEvent.objects.get(action="model_version.index_build", object_id=str(version.pk))
    assert event.after["index_checksum"] == version.index_checksum
    # and `--check` confirms the index matches
    out, _ = _run("tinygpt@v1", "--check")
    assert "matches the manifest (20 works)" in out

    # when generations are scored through the loaded index
    loaded = attribution_index_load(model_version=version)
    assert isinstance(loaded.index, GradientIndex)
    assert loaded.work_ids == sorted(w.pk for w in works)
    planted = plant_copy(texts, 11, 18, random.Random(0))
    gens = [
        _generation(version, 1, "", texts[4]),
        _generation(version, 2, "Tell me a story.", planted.generation),
    ]
    results = attribute_generations(
        loaded.adapter, loaded.index, generation_inputs(gens), 5, copy_index=loaded.copy_index
    )
    # then a generation that repeats a work ranks that work first, and a verbatim copy is credited and flagged
    assert results[0].works[0].work_id == works[4].pk
    copied = [w for w in results[1].works if w.copied]
    assert [w.work_id for w in copied] == [works[11].pk]
    assert results[1].copies.text[0].text.split() == planted.copied.rstrip(".").split()


def test_a_stale_index_is_refused(reference_text_dir, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(reference_text_dir, checkpoint)
    texts = make_texts(12, seed=5, sentences=(2, 3))
    works = [_text_work(t, i) for i, t in enumerate(texts)]
    version = _version("storyteller", REF_TEXT, str(checkpoint), works[:10], config={"index": {"projection_dim": 128}})
    attribution_index_build(model_version=version)
    attribution_index_load(model_version=version)  # fresh: accepted

    # the manifest gains a work: refused, by the service and by the command's --check
    extra = ManifestEntry.objects.create(model_version=version, work=works[10], sha256=works[10].sha256)
    with pytest.raises(IndexStaleError, match=r"storyteller@v1.*training manifest changed \(10 works when built, 11"):
        attribution_index_load(model_version=version)
    with pytest.raises(CommandError, match=r"refusing to score with a stale index"):
        _run("storyteller@v1", "--check")
    extra.delete()
    attribution_index_load(model_version=version)  # the same manifest again: accepted

    # the manifest names other content for a work (same ids, other hash): refused
    ManifestEntry.objects.filter(model_version=version, work=works[0]).update(sha256="0" * 64)
    with pytest.raises(IndexStaleError, match="training manifest changed"):
        attribution_index_load(model_version=version)
    ManifestEntry.objects.filter(model_version=version, work=works[0]).update(sha256=works[0].sha256)

    # the checkpoint is retrained: refused
    weights = checkpoint / "model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:-8] + bytes(8))
    with pytest.raises(IndexStaleError, match="the checkpoint changed") as info:
        attribution_index_load(model_version=version)
    assert info.value.reasons == ["the checkpoint changed (its fingerprint differs from the one indexed)"]
    weights.write_bytes(original)

    # the adapter's config changes (it defines the features): refused
    version.config = {"index": {"projection_dim": 256}}
    version.save()
    with pytest.raises(IndexStaleError, match="config changed"):
        attribution_index_load(model_version=version)
    version.config = {"index": {"projection_dim": 128}}
    version.save()

    # the index files are altered on disk: refused as damaged
    loaded = attribution_index_load(model_version=version)
    (loaded.path / "gradient" / "work_ids.json").write_text("[1, 2, 3]")
    with pytest.raises(IndexIntegrityError, match="were altered"):
        attribution_index_load(model_version=version)

    # and a rebuild makes it usable again, in a new build directory
    result = attribution_index_build(model_version=version)
    assert result.path != loaded.path
    assert attribution_index_load(model_version=version).path == result.path


def test_image_retrieval_round_trip_with_files_through_the_command():
    from attribution.adapters.reference_image import digits_dataset, pixels_to_png
    from attribution.adapters.scoring import attribute_generations
    from attribution.engine.retrieval import EmbeddingIndex

    images, labels = digits_dataset()
    works = []
    for i in range(60):
        png = pixels_to_png(images[i])
        work = Work(
            kind="image", title=f"digit {labels[i]}", size_bytes=len(png), mime_type="image/png", sha256=_sha(png)
        )
        work.file.save(f"digit-{i}.png", ContentFile(png), save=False)
        work.save()
        works.append(work)
    version = _version("painter", RETRIEVAL_IMAGE, "", works, modality="image")
    out, _ = _run(str(version.pk), "--no-progress", "--batch-size", "16")
    assert "retrieval index of 60 works" in out
    version.refresh_from_db()
    loaded = attribution_index_load(model_version=version)
    assert isinstance(loaded.index, EmbeddingIndex)
    noisy = np.clip(images[37] * 0.9 + 0.05, 0, 1)
    gen = _generation(version, 1, "a digit", "", output_mime_type="image/png")
    gen.output_media.save("gen.png", ContentFile(pixels_to_png(noisy, scale=6)))
    [result] = attribute_generations(
        loaded.adapter, loaded.index, generation_inputs([gen]), 3, copy_index=loaded.copy_index
    )
    assert result.works[0].work_id == works[37].pk
    assert result.works[0].copied  # a brightness change does not hide a copied image
    assert result.copies.images[0].whole_image


def test_command_errors_are_clear_and_exit_non_zero(tmp_path, tiny_gpt2_dir):
    works = [_text_work("The quiet river finds the stone.", 0)]
    _version("broken", "attribution.adapters.nope.Adapter", "", works)
    with pytest.raises(CommandError, match=r"model version 'broken@v1': adapter .* not found"):
        _run("broken@v1")
    _version("nockpt", REF_TEXT, str(tmp_path / "missing"), works)
    with pytest.raises(CommandError, match=r"model version 'nockpt@v1': checkpoint .* does not exist"):
        _run("nockpt@v1")
    empty = _version("empty", RETRIEVAL_IMAGE, "", [])
    with pytest.raises(CommandError, match=r"'empty@v1' has an empty training manifest"):
        _run("empty@v1")
    with pytest.raises(CommandError, match=r"'empty@v1' has no attribution index: run"):
        _run("empty@v1", "--check")
    with pytest.raises(IndexMissingError):
        attribution_index_load(model_version=empty)
    with pytest.raises(CommandError, match="no model version 'ghost@v9'"):
        _run("ghost@v9")
    with pytest.raises(CommandError, match="must be model@label or a numeric id"):
        _run("ghost")
    with pytest.raises(CommandError, match="--batch-size must be >= 1"):
        _run("empty@v1", "--batch-size", "0")
    # A text adapter given image works names the version and the works.
    png_work = Work.objects.create(kind="image", title="img", size_bytes=3, mime_type="image/png", sha256="1" * 64)
    _version("mixed", HF, tiny_gpt2_dir, [png_work])
    with pytest.raises(
        CommandError, match=rf"mixed@v1.*reads code/text works; 1 manifest work\(s\) .*{png_work.pk} \(image\)"
    ):
        _run("mixed@v1")
    # A checkpoint directory whose config is broken: the load fails, naming the version.
    (tmp_path / "config.json").write_text("{}")
    _version("badckpt", HF, str(tmp_path), works)
    with pytest.raises(CommandError, match=r"model version 'badckpt@v1': cannot load the model"):
        _run("badckpt@v1")
    # Nothing was recorded for the failed builds, and no half-written index was left behind.
    assert not ModelVersion.objects.filter(index_path__gt="").exists()
    assert not list(Path(settings.ROYALTIES_INDEX_DIR).rglob("*.partial"))


def test_left_out_parameters_are_recorded_and_warned(reference_text_dir):
    texts = make_texts(8, seed=9, sentences=(2, 3))
    works = [_text_work(t, i) for i, t in enumerate(texts)]
    config = {"index": {"projection_dim": 128, "exclude": ["lm_head.*"]}}
    version = _version("partial", REF_TEXT, reference_text_dir, works, config=config)
    with pytest.warns(UserWarning, match="leaves out 1 trainable parameter"):
        out, err = _run("partial@v1", "--no-progress")
    assert "warning: 1 trainable parameter(s) left out of the gradient index" in err
    assert "lm_head.weight" in err
    version.refresh_from_db()
    coverage = version.index_meta["coverage"]
    assert [e["name"] for e in coverage["excluded"]] == ["lm_head.weight"]
    assert 0 < coverage["share"] < 1
    assert f"parameters covered {coverage['share']:.1%}" in out
    assert version.index_meta["warnings"]
    # A misspelt option is refused before anything is built, naming the version and the option.
    version.config = {"index": {"projection": 128}}
    version.save()
    with pytest.raises(CommandError, match=r"'partial@v1': config.index has unknown option\(s\) \['projection'\]"):
        _run("partial@v1")
    version.config = {"index": {"projection_dim": 0}}
    version.save()
    with pytest.raises(CommandError, match=r"'partial@v1': config.index is invalid: projection_dim must be"):
        _run("partial@v1")


def test_fisher_follows_the_adapter_and_the_versions_config(reference_text_dir, reference_image_dir, digit_works):
    from attribution.engine import GradientIndex

    # given a text version that leaves the Fisher to the platform, and one that asks for the empirical one
    texts = make_texts(8, seed=31, sentences=(2, 3))
    works = [_text_work(t, i) for i, t in enumerate(texts)]
    sampled = _version("fisher-default", REF_TEXT, reference_text_dir, works, config={"index": {"projection_dim": 96}})
    empirical = _version("fisher-empirical", REF_TEXT, reference_text_dir, works,
                         config={"index": {"projection_dim": 96, "fisher": "empirical"}})
    # when both are built
    attribution_index_build(model_version=sampled)
    attribution_index_build(model_version=empirical)
    # then the default draws targets from the model (the true Fisher) and the other keeps the observed ones;
    # the stored features are the same, only the curvature differs
    one, two = (attribution_index_load(model_version=v).index for v in (sampled, empirical))
    assert isinstance(one, GradientIndex)
    assert (one.config.fisher, two.config.fisher) == ("sampled", "empirical")
    assert [v.index_meta["fisher"] for v in ModelVersion.objects.filter(pk__in=[sampled.pk, empirical.pk])
            .order_by("pk")] == ["sampled", "empirical"]
    np.testing.assert_array_equal(one.train_features().numpy(), two.train_features().numpy())
    assert one.manifest["checksum"] != two.manifest["checksum"]

    # an adapter whose loss has no targets to draw (the digit VAE) is built with the empirical Fisher, and
    # asking it for the sampled one is refused before anything is built, naming the option
    images = []
    for n, digit in enumerate(digit_works[:6]):
        work = Work.objects.create(kind="image", title=digit.title, size_bytes=len(digit.data),
                                   mime_type="image/png", sha256=_sha(digit.data))
        work.file.save(f"digit{n}.png", ContentFile(digit.data))
        images.append(work)
    vae = _version("vae", "attribution.adapters.reference_image.ReferenceImageAdapter", reference_image_dir, images,
                   config={"index": {"projection_dim": 64}}, modality="image")
    attribution_index_build(model_version=vae)
    vae.refresh_from_db()
    assert vae.index_meta["fisher"] == "empirical"
    vae.config = {"index": {"projection_dim": 64, "fisher": "sampled"}}
    vae.save()
    with pytest.raises(CommandError, match=r"'vae@v1': config.index.fisher is 'sampled' but the "
                                           r"ReferenceImageAdapter adapter cannot draw targets"):
        _run("vae@v1")
