"""Build, record and load a model version's attribution index (the Django side of the engine).

A build featurises every work of the version's training manifest through the version's adapter, writes the
index (gradient or embedding) and a copy-detection index under
``ROYALTIES_INDEX_DIR/<model>/<version>/<build id>/``, and records on the version where it is, a checksum of
its files and what it was built from: the manifest hash (SHA-256 over the sorted ``(work id, sha256)`` pairs),
the checkpoint fingerprint, the adapter and its config, the projection. Loading compares those with the
version as it is now and refuses a stale index: scores from a model or a manifest that changed since would
pay the wrong people.

Torch is imported inside the functions, so importing this module from web code stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from attribution.models import Generation, ManifestEntry, ModelVersion
from audit.services import audit_record

if TYPE_CHECKING:
    from attribution.adapters.base import GenerationInput, ModelAdapter, WorkInput
    from attribution.engine.copy_detection import CopyIndex

logger = logging.getLogger(__name__)

INDEX_FORMAT = "royalties-attribution-index/1"
BUILD_FILE = "build.json"
GRADIENT_DIR = "gradient"
EMBEDDING_DIR = "embeddings"
COPY_DIR = "copy"

# progress(stage, done, total): stage is "featurise" (done/total in works) or "copy-index".
Progress = Callable[[str, int, int], None]


class AttributionIndexServiceError(Exception):
    """Base of the errors below; every message names the model version."""


class IndexBuildError(AttributionIndexServiceError):
    """The index cannot be built (empty manifest, a work that cannot be read, an engine error)."""


class IndexMissingError(AttributionIndexServiceError):
    """The version has no index yet, or its files are gone."""


class IndexStaleError(AttributionIndexServiceError):
    """The manifest, checkpoint, adapter or config changed since the index was built: rebuild it."""

    def __init__(self, message: str, *, reasons: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.reasons = list(reasons)


class IndexIntegrityError(AttributionIndexServiceError):
    """The index files no longer match the checksum recorded on the version."""


@dataclass(frozen=True)
class IndexBuildResult:
    path: Path
    checksum: str
    meta: dict[str, Any]


@dataclass
class LoadedIndex:
    """Everything the nightly job needs to score one version's generations."""

    model_version_id: int
    label: str
    method: str
    index: Any  # GradientIndex | EmbeddingIndex: both answer top_k(...) and work_ids
    copy_index: CopyIndex
    adapter: ModelAdapter
    meta: dict[str, Any]
    path: Path

    @property
    def work_ids(self) -> list[int]:
        return [int(w) for w in self.index.work_ids]


# --- inputs ------------------------------------------------------------------------------------------------


def model_version_label(model_version: ModelVersion) -> str:
    return f"{model_version.ai_model.name}@{model_version.label}"


def manifest_entries(*, model_version: ModelVersion) -> list[ManifestEntry]:
    """The version's manifest in work-id order (the row order of its index)."""
    return list(model_version.manifest_entries.select_related("work").order_by("work_id"))


def manifest_hash(*, model_version: ModelVersion) -> tuple[str, int]:
    """SHA-256 over the sorted ``(work id, sha256)`` pairs of the manifest, and how many there are."""
    pairs = sorted(model_version.manifest_entries.values_list("work_id", "sha256"))
    digest = hashlib.sha256()
    for work_id, sha in pairs:
        digest.update(f"{work_id}:{sha}\n".encode())
    return digest.hexdigest(), len(pairs)


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config or {}, sort_keys=True, default=str).encode()).hexdigest()


def work_input(entry: ManifestEntry) -> WorkInput:
    """One manifest work as the engine's ``WorkInput`` (files by local path when the storage has one)."""
    from attribution.adapters.base import WorkInput

    work = entry.work
    data: bytes | None = None
    path: str | None = None
    if work.file:
        try:
            path = work.file.path
        except NotImplementedError:  # remote storage: read the bytes instead
            with work.file.open("rb") as fh:
                data = fh.read()
    title = " ".join(part for part in (work.title, work.description) if part)
    return WorkInput(
        id=work.pk,
        kind=work.kind,
        text=work.text_body,
        data=data,
        path=path,
        mime_type=work.mime_type,
        sha256=entry.sha256,
        title=title,
    )


def generation_inputs(generations: Iterable[Generation]) -> list[GenerationInput]:
    """Logged generations as the engine's ``GenerationInput`` (for the nightly job)."""
    from attribution.adapters.base import GenerationInput

    out = []
    for gen in generations:
        path: str | None = None
        data: bytes | None = None
        if gen.output_media:
            try:
                path = gen.output_media.path
            except NotImplementedError:
                with gen.output_media.open("rb") as fh:
                    data = fh.read()
        out.append(
            GenerationInput(
                id=gen.pk,
                prompt=gen.prompt,
                output_text=gen.output_text,
                output_data=data,
                output_path=path,
                output_mime_type=gen.output_mime_type,
            )
        )
    return out


def resolve_checkpoint_uri(uri: str) -> str:
    """A relative checkpoint path is relative to ``ROYALTIES_MODEL_DIR``; absolute paths and URIs stay."""
    if not uri or "://" in uri or Path(uri).expanduser().is_absolute():
        return uri
    return str(Path(settings.ROYALTIES_MODEL_DIR) / uri)


def model_version_adapter(*, model_version: ModelVersion) -> ModelAdapter:
    """The version's adapter, constructed and checked (raises ``AdapterError`` naming the version)."""
    from attribution.adapters.registry import adapter_load

    return adapter_load(
        model_version.adapter,
        resolve_checkpoint_uri(model_version.checkpoint_uri),
        model_version.config,
        model_version_label(model_version),
    )


# --- files -------------------------------------------------------------------------------------------------


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def index_dir_checksum(path: Path) -> str:
    """SHA-256 over every file of an index directory (relative name and content hash, in name order)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}:{_file_sha256(file)}\n".encode())
    return digest.hexdigest()


def _build_root(model_version: ModelVersion) -> Path:
    model = slugify(model_version.ai_model.name) or f"model-{model_version.ai_model_id}"
    version = slugify(model_version.label) or f"version-{model_version.pk}"
    return Path(settings.ROYALTIES_INDEX_DIR) / model / version


# --- build -------------------------------------------------------------------------------------------------


def gradient_index_config(*, config: dict[str, Any], label: str, adapter: Any = None):
    """The engine's ``IndexConfig`` from the version's ``config["index"]`` (engine defaults for the rest).

    One platform default differs from the engine's: ``fisher`` is ``"sampled"`` (the true Fisher's curvature,
    docs/benchmarks.md) when the adapter can draw targets from its model, ``"empirical"`` otherwise.
    """
    from attribution.engine import IndexConfig

    options = config.get("index", {}) if isinstance(config, dict) else {}
    if not isinstance(options, dict):
        raise IndexBuildError(f"model version {label!r}: config.index must be an object of gradient-index options")
    known = set(IndexConfig().to_dict())
    unknown = sorted(set(options) - known)
    if unknown:
        raise IndexBuildError(
            f"model version {label!r}: config.index has unknown option(s) {unknown}; known: {sorted(known)}"
        )
    sampled_ok = adapter is not None and adapter.supports_sampled_fisher
    defaults = {**IndexConfig().to_dict(), "fisher": "sampled" if sampled_ok else "empirical"}
    try:
        index_config = IndexConfig.from_dict({**defaults, **options})
    except (TypeError, ValueError) as exc:
        raise IndexBuildError(f"model version {label!r}: config.index is invalid: {exc}") from exc
    if index_config.fisher == "sampled" and not sampled_ok:
        raise IndexBuildError(
            f"model version {label!r}: config.index.fisher is 'sampled' but the "
            f"{type(adapter).__name__ if adapter is not None else 'model'} adapter cannot draw targets from its "
            f"model (no sampled-target loss); use 'empirical'"
        )
    return index_config


def _build_gradient(adapter, works, out: Path, batch_size: int, on_batch, config) -> dict[str, Any]:
    from attribution.engine import GradientIndex

    model = adapter.load_model()
    index = GradientIndex.build(
        model,
        adapter.loss_fn,
        lambda: adapter.work_batches(works, batch_size),
        fisher_loss_fn=adapter.fisher_loss_fn if config.fisher == "sampled" else None,
        config=config,
        work_ids=[w.id for w in works],
        path=out,
        progress=lambda done, _total: on_batch(done),
    )
    coverage = index.coverage
    return {
        "projection_dim": config.projection_dim,
        "seed": config.seed,
        "curvature": config.curvature,
        "fisher": config.fisher,
        "feature_dim": index.feature_dim,
        "model_fingerprint": index.fingerprint,
        "coverage": coverage,
        "engine_checksum": index.checksum,
    }


def _build_embeddings(adapter, works, out: Path, batch_size: int, on_batch, expect: dict[str, Any]) -> dict:
    from attribution.engine.retrieval import EmbeddingIndex

    encoder = adapter.load_model()
    index = EmbeddingIndex.build(
        encoder,
        adapter.work_batches(works, batch_size),
        work_ids=[w.id for w in works],
        meta=expect,
        progress=lambda done, _total: on_batch(done),
    )
    index.save(out)
    return {"embedding_dim": index.dim, "storage_dtype": index.config.storage_dtype}


def _build_copy_index(works: Sequence[WorkInput], out: Path, label: str) -> dict[str, Any]:
    from attribution.engine.copy_detection import CopyIndex, decode_gray

    texts = [(w.id, w.text_content()) for w in works if w.kind in ("text", "code")]
    images = []
    for w in works:
        if w.kind != "image":
            continue
        try:
            images.append((w.id, decode_gray(w.read_bytes())))
        except (ValueError, OSError) as exc:
            raise IndexBuildError(f"model version {label!r}: work {w.id} is not a readable image: {exc}") from exc
    copy_index = CopyIndex.build(texts=texts, images=images)
    copy_index.save(out)
    return copy_index.stats


def attribution_index_build(
    *,
    model_version: ModelVersion,
    progress: Progress | None = None,
    batch_size: int | None = None,
    actor: Any = None,
    actor_label: str = "",
) -> IndexBuildResult:
    """Featurise the version's manifest, write its index and copy index, and record them on the version."""
    from attribution.adapters.base import METHOD_GRADIENT, AdapterError

    label = model_version_label(model_version)
    adapter = model_version_adapter(model_version=model_version)
    entries = manifest_entries(model_version=model_version)
    if not entries:
        raise IndexBuildError(f"model version {label!r} has an empty training manifest: nothing to index")
    m_hash, m_count = manifest_hash(model_version=model_version)
    works = [work_input(e) for e in entries]
    adapter.check_works(works)
    size = batch_size or adapter.default_batch_size
    if size < 1:
        raise IndexBuildError(f"batch size must be >= 1, got {size}")
    index_config = gradient_index_config(config=model_version.config, label=label, adapter=adapter)
    fingerprint = adapter.checkpoint_fingerprint()
    started = time.perf_counter()
    build_id = f"{timezone.now():%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
    final = _build_root(model_version) / build_id
    partial = final.with_name(build_id + ".partial")
    partial.mkdir(parents=True)

    def on_batch(done_batches: int) -> None:
        if progress is not None:
            progress("featurise", min(done_batches * size, len(works)), len(works))

    expect = {"manifest_hash": m_hash, "checkpoint_fingerprint": fingerprint}
    try:
        if adapter.method == METHOD_GRADIENT:
            engine_meta = _build_gradient(adapter, works, partial / GRADIENT_DIR, size, on_batch, index_config)
        else:
            engine_meta = _build_embeddings(adapter, works, partial / EMBEDDING_DIR, size, on_batch, expect)
        if progress is not None:
            progress("copy-index", 0, 1)
        copy_stats = _build_copy_index(works, partial / COPY_DIR, label)
        if progress is not None:
            progress("copy-index", 1, 1)
    except (AdapterError, IndexBuildError):
        shutil.rmtree(partial, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise IndexBuildError(
            f"model version {label!r}: building the index failed: {type(exc).__name__}: {exc}"
        ) from exc

    warnings: list[str] = []
    coverage = engine_meta.get("coverage")
    if coverage:
        left_out = [e["name"] for e in coverage.get("excluded", [])]
        if left_out:
            warnings.append(
                f"{len(left_out)} trainable parameter(s) left out of the gradient index "
                f"(covered share {coverage.get('share', 0):.1%}): {', '.join(left_out[:10])}"
            )
    meta = {
        "format": INDEX_FORMAT,
        "build_id": build_id,
        "method": adapter.method,
        "adapter": model_version.adapter,
        "adapter_description": adapter.describe(),
        "config_hash": config_hash(model_version.config),
        "manifest_hash": m_hash,
        "manifest_count": m_count,
        "checkpoint_fingerprint": fingerprint,
        "batch_size": size,
        "copy_detection": copy_stats,
        "duration_seconds": round(time.perf_counter() - started, 3),
        "warnings": warnings,
        **engine_meta,
    }
    (partial / BUILD_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
    partial.rename(final)
    checksum = index_dir_checksum(final)
    for warning in warnings:
        logger.warning("attribution index of %s: %s", label, warning)

    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
        before = {
            "index_path": version.index_path,
            "index_checksum": version.index_checksum,
            "index_built_at": version.index_built_at,
        }
        version.index_path = str(final)
        version.index_checksum = checksum
        version.index_meta = meta
        version.index_built_at = timezone.now()
        version.save(update_fields=["index_path", "index_checksum", "index_meta", "index_built_at"])
        audit_record(
            action="model_version.index_build",
            obj=version,
            actor=actor,
            actor_label=actor_label,
            before=before,
            after={
                "index_path": version.index_path,
                "index_checksum": checksum,
                "index_built_at": version.index_built_at,
                "method": adapter.method,
                "manifest_hash": m_hash,
                "manifest_count": m_count,
                "checkpoint_fingerprint": fingerprint,
            },
        )
    model_version.index_path = version.index_path
    model_version.index_checksum = version.index_checksum
    model_version.index_meta = version.index_meta
    model_version.index_built_at = version.index_built_at
    return IndexBuildResult(path=final, checksum=checksum, meta=meta)


# --- load --------------------------------------------------------------------------------------------------


def attribution_index_check(*, model_version: ModelVersion, adapter: ModelAdapter | None = None) -> list[str]:
    """Why the version's recorded index no longer fits the version (empty when it does)."""
    meta = model_version.index_meta or {}
    reasons = []
    m_hash, m_count = manifest_hash(model_version=model_version)
    if meta.get("manifest_hash") != m_hash:
        reasons.append(f"the training manifest changed ({meta.get('manifest_count')} works when built, {m_count} now)")
    if meta.get("adapter") != model_version.adapter:
        reasons.append(f"the adapter changed ({meta.get('adapter')!r} when built, {model_version.adapter!r} now)")
    if meta.get("config_hash") != config_hash(model_version.config):
        reasons.append("the version's config changed")
    adapter = adapter or model_version_adapter(model_version=model_version)
    if meta.get("checkpoint_fingerprint") != adapter.checkpoint_fingerprint():
        reasons.append("the checkpoint changed (its fingerprint differs from the one indexed)")
    return reasons


def attribution_index_load(
    *, model_version: ModelVersion, adapter: ModelAdapter | None = None, verify: bool = True
) -> LoadedIndex:
    """The version's index, refused (``IndexStaleError``) when its manifest or checkpoint no longer matches."""
    from attribution.engine import GradientIndex
    from attribution.engine import IndexMismatchError as GradientMismatch
    from attribution.engine.copy_detection import CopyIndex, CopyIndexError
    from attribution.engine.retrieval import EmbeddingIndex, EmbeddingIndexError

    label = model_version_label(model_version)
    if not model_version.index_path:
        raise IndexMissingError(
            f"model version {label!r} has no attribution index: run `manage.py build_attribution_index {label}`"
        )
    root = Path(model_version.index_path)
    if not (root / BUILD_FILE).is_file():
        raise IndexMissingError(f"model version {label!r}: the index at {str(root)!r} is gone; rebuild it")
    adapter = adapter or model_version_adapter(model_version=model_version)
    reasons = attribution_index_check(model_version=model_version, adapter=adapter)
    if reasons:
        raise IndexStaleError(
            f"model version {label!r}: refusing to score with a stale index ({'; '.join(reasons)}); rebuild it "
            f"with `manage.py build_attribution_index {label}`",
            reasons=reasons,
        )
    if verify and index_dir_checksum(root) != model_version.index_checksum:
        raise IndexIntegrityError(f"model version {label!r}: the index files at {str(root)!r} were altered")
    meta = json.loads((root / BUILD_FILE).read_text())
    work_ids = list(model_version.manifest_entries.order_by("work_id").values_list("work_id", flat=True))
    try:
        if meta["method"] == "gradient":
            index = GradientIndex.load(root / GRADIENT_DIR, expect_work_ids=work_ids, verify=False)
        else:
            index = EmbeddingIndex.load(
                root / EMBEDDING_DIR,
                expect={
                    "manifest_hash": meta["manifest_hash"],
                    "checkpoint_fingerprint": meta["checkpoint_fingerprint"],
                },
                verify=False,
            )
        copy_index = CopyIndex.load(root / COPY_DIR, verify=False)
    except (GradientMismatch, EmbeddingIndexError) as exc:
        raise IndexStaleError(f"model version {label!r}: {exc}", reasons=[str(exc)]) from exc
    except CopyIndexError as exc:
        raise IndexIntegrityError(f"model version {label!r}: {exc}") from exc
    return LoadedIndex(
        model_version_id=model_version.pk,
        label=label,
        method=meta["method"],
        index=index,
        copy_index=copy_index,
        adapter=adapter,
        meta=meta,
        path=root,
    )
