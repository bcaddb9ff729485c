"""manage.py import_catalog FILE: bulk-import works from CSV or JSON Lines, all lines or none."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from contributors.services import catalog_import, import_format_for
from contributors.services.imports import __doc__ as FORMAT_HELP


class Command(BaseCommand):
    help = (
        "Import works from a CSV or JSON Lines file. Every line is checked first; any problem is reported by "
        "line and field and nothing is imported. --dry-run only checks."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=["csv", "jsonl"], help="default: from the file extension")
        parser.add_argument("--dry-run", action="store_true", help="check every line, import nothing")
        parser.add_argument(
            "--base-dir", type=Path, help="where `file` paths are read from (default: the import file's folder)"
        )
        parser.add_argument("--actor", help="e-mail of the catalog admin to record as having imported")
        parser.add_argument("--json", dest="as_json", action="store_true", help="print the report as one JSON object")

    def create_parser(self, prog_name, subcommand, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        return super().create_parser(
            prog_name, subcommand, epilog=FORMAT_HELP, formatter_class=RawDescriptionHelpFormatter, **kwargs
        )

    def handle(
        self, *args, file: Path, format: str | None, dry_run: bool, base_dir: Path | None, actor: str | None,
        as_json: bool = False, **options,
    ) -> None:
        if not file.is_file():
            raise CommandError(f"no such file: {file}")
        try:
            fmt = import_format_for(file.name, format)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        who: object = "command:import_catalog"
        if actor:
            user = get_user_model().objects.filter(email__iexact=actor).first()
            if user is None:
                raise CommandError(f"--actor: no user with e-mail {actor!r}")
            who = user
        report = catalog_import(
            data=file.read_bytes(), fmt=fmt, base_dir=(base_dir or file.parent).resolve(), actor=who,
            dry_run=dry_run, source_name=file.name,
        )
        if as_json:
            self._print_json(report)
        else:
            self._print(report)
        if report.issues:
            raise CommandError(f"{len(report.issues)} problem(s); nothing was imported")

    def _print(self, report) -> None:
        for issue in report.issues:
            self.stderr.write(f"{report.source_name}: {issue}")
        if report.issues:
            return
        if report.dry_run:
            self.stdout.write(
                self.style.SUCCESS(f"{report.records} line(s) checked: all valid; nothing imported (dry run).")
            )
            for item in report.planned:
                if item.dispute_with or item.dispute_with_line:
                    target = f"work #{item.dispute_with}" if item.dispute_with else f"line {item.dispute_with_line}"
                    self.stdout.write(f"  line {item.line}: same content as {target}: a dispute will be opened")
            return
        self.stdout.write(self.style.SUCCESS(
            f"Imported {len(report.created)} work(s); {len(report.disputes)} dispute(s) opened."
        ))

    def _print_json(self, report) -> None:
        self.stdout.write(json.dumps({
            "source": report.source_name, "format": report.format, "dry_run": report.dry_run,
            "records": report.records,
            "issues": [{"line": i.line, "field": i.field, "message": i.message} for i in report.issues],
            "created": report.created, "disputes": report.disputes,
        }))

