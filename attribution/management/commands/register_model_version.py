"""manage.py register_model_version: a new model version and its training manifest, all-or-nothing."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from attribution.models import AIModel
from attribution.services.errors import ServiceError
from attribution.services.registry import ai_model_create, model_version_register


class Command(BaseCommand):
    help = (
        "Register a model version with the adapter that loads it and the manifest of works it was trained on "
        "(CSV with a work_id and/or sha256 column, or JSON Lines). Unknown, ambiguous, duplicated and "
        "opted-out works are reported by line and nothing is written."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", required=True, help="AI model name (created if --modality is given).")
        parser.add_argument("--label", required=True, help="Version label, unique within the model.")
        parser.add_argument("--adapter", default="", help="Dotted path of the adapter class.")
        parser.add_argument("--checkpoint", default="", help="Where the checkpoint lives (path or URI).")
        parser.add_argument("--config", default="{}", help="JSON object for the adapter.")
        parser.add_argument("--manifest", type=Path, help="Manifest file (.csv or .jsonl).")
        parser.add_argument("--dry-run", action="store_true", help="Check everything; write nothing.")
        parser.add_argument("--modality", choices=AIModel.Modality.values,
                            help="Create the AI model with this modality if it does not exist yet.")
        parser.add_argument("--owner-team", default="", help="Owner team of a newly created AI model.")

    def handle(self, *args, **options) -> None:
        label = "command:register_model_version"
        try:
            config = json.loads(options["config"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config is not valid JSON: {exc}") from exc
        manifest = None
        if options["manifest"] is not None:
            try:
                manifest = options["manifest"].read_bytes()
            except OSError as exc:
                raise CommandError(f"cannot read the manifest: {exc}") from exc
        try:
            ai_model = AIModel.objects.filter(name=options["model"]).first()
            if ai_model is None:
                if not options["modality"]:
                    raise CommandError(
                        f"no AI model named {options['model']!r}; pass --modality to create it"
                    )
                if options["dry_run"]:
                    raise CommandError("a dry run cannot create the AI model; create it first (without --dry-run)")
                ai_model = ai_model_create(name=options["model"], modality=options["modality"],
                                           owner_team=options["owner_team"], actor_label=label)
                self.stdout.write(f"created AI model {ai_model.name} ({ai_model.modality})")
            version, report = model_version_register(
                ai_model=ai_model, label=options["label"], adapter=options["adapter"],
                checkpoint_uri=options["checkpoint"], config=config, manifest=manifest,
                manifest_filename=options["manifest"].name if options["manifest"] else "",
                dry_run=options["dry_run"], actor_label=label,
            )
        except ServiceError as exc:
            for error in exc.errors:
                where = f"line {error.line}: " if error.line else ""
                self.stderr.write(f"  {where}{error.field or ''}: {error.message}")
            raise CommandError(exc.detail) from exc
        if report is not None:
            self.stdout.write(
                f"manifest ({report.format}, sha256 {report.manifest_sha256}): {report.lines} lines, "
                f"{report.added} works {'would be ' if report.dry_run else ''}added"
            )
            for error in report.errors:
                self.stderr.write(f"  line {error.line}: {error.field}: {error.message}")
            if report.errors:
                raise CommandError(f"the manifest has {len(report.errors)} problem line(s)")
        if version is None:
            self.stdout.write(self.style.SUCCESS("dry run: everything checks out; nothing was written"))
        else:
            self.stdout.write(self.style.SUCCESS(f"registered {version.ref} (id {version.pk})"))
