"""manage.py build_attribution_index MODEL_VERSION: featurise a version's training manifest into its index."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from attribution.index_services import (
    AttributionIndexServiceError,
    attribution_index_build,
    attribution_index_load,
    model_version_label,
)
from attribution.models import ModelVersion


def model_version_find(ref: str) -> ModelVersion:
    """A version by ``model@label`` or by numeric id; CommandError naming the reference when there is none."""
    ref = ref.strip()
    query = ModelVersion.objects.select_related("ai_model")
    if "@" in ref:
        name, _, label = ref.rpartition("@")
        version = query.filter(ai_model__name=name, label=label).first()
    elif ref.isdigit():
        version = query.filter(pk=int(ref)).first()
    else:
        raise CommandError(f"MODEL_VERSION must be model@label or a numeric id, got {ref!r}")
    if version is None:
        raise CommandError(f"no model version {ref!r}")
    return version


class Command(BaseCommand):
    help = (
        "Build the attribution index of a model version: featurise every work of its training manifest with "
        "the version's adapter (gradient or retrieval), build the copy-detection index, store both under "
        "ROYALTIES_INDEX_DIR and record them on the version. With --check, only report whether the recorded "
        "index still matches the version's manifest and checkpoint."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("model_version", help="model@label, or the version's numeric id")
        parser.add_argument("--batch-size", type=int, default=None, help="works per batch (default: the adapter's)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in logs)")
        parser.add_argument("--check", action="store_true", help="validate the recorded index; build nothing")

    def handle(self, *args, **options) -> None:
        from attribution.adapters.base import AdapterError

        version = model_version_find(options["model_version"])
        label = model_version_label(version)
        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError(f"--batch-size must be >= 1, got {options['batch_size']}")
        try:
            if options["check"]:
                loaded = attribution_index_load(model_version=version)
                self.stdout.write(
                    self.style.SUCCESS(
                        f"{label}: index at {loaded.path} matches the manifest ({len(loaded.work_ids)} works) "
                        "and the checkpoint"
                    )
                )
                return
            result = self._build(version, options)
        except (AdapterError, AttributionIndexServiceError) as exc:
            raise CommandError(str(exc)) from exc
        meta = result.meta
        for warning in meta.get("warnings", []):
            self.stderr.write(self.style.WARNING(f"warning: {warning}"))
        coverage = meta.get("coverage")
        share = f", parameters covered {coverage['share']:.1%}" if coverage else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"{label}: {meta['method']} index of {meta['manifest_count']} works built in "
                f"{meta['duration_seconds']:.1f}s{share}\n  path {result.path}\n  checksum {result.checksum}"
            )
        )

    def _build(self, version: ModelVersion, options):
        from tqdm import tqdm

        bars: dict[str, tqdm] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if options["no_progress"]:
                return
            bar = bars.get(stage)
            if bar is None:
                unit = "work" if stage == "featurise" else "step"
                bar = bars[stage] = tqdm(total=total, desc=stage, unit=unit, file=self.stderr._out, leave=True)
            bar.update(done - bar.n)

        try:
            return attribution_index_build(
                model_version=version,
                progress=progress,
                batch_size=options["batch_size"],
                actor_label="command:build_attribution_index",
            )
        finally:
            for bar in bars.values():
                bar.close()
