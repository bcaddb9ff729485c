"""manage.py purge_generation_text: the retention job, by hand (beat runs it daily)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from attribution.services.retention import generation_text_purge


class Command(BaseCommand):
    help = (
        "Erase prompt and output text of generations attributed more than N days ago "
        "(ROYALTIES_GENERATION_TEXT_RETENTION_DAYS unless --days); hashes, revenue and attributions stay."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, help="Retention in days (0 keeps text forever).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be purged.")

    def handle(self, *args, days: int | None, dry_run: bool, **options) -> None:
        report = generation_text_purge(retention_days=days, dry_run=dry_run,
                                       actor_label="command:purge_generation_text")
        if report.cutoff is None:
            self.stdout.write("retention is 0 days: generation text is kept forever; nothing to do")
            return
        verb = "would purge" if dry_run else "purged"
        self.stdout.write(
            f"{verb} the text of {report.purged} generation(s) attributed before {report.cutoff:%Y-%m-%d %H:%M} UTC"
            + ("" if dry_run else f"; deleted {report.files_deleted} output file(s)")
        )
