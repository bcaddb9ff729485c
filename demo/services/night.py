"""The nightly attribution of the demo day: ``manage.py run_nightly --date DAY``, the same job beat runs at 02:00.

Skipped when every demo model's royalty program already has its accrual entry for the day (the job would post
nothing new anyway; skipping saves loading the models again).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable

from django.core.management import call_command

from attribution.models import AIModel

Say = Callable[[str], None]


def demo_night_posted(*, day: dt.date, model_names: list[str]) -> bool:
    """Whether every demo model's program has an accrual entry for ``day``."""
    from royalties.ledger.selectors import accrual_entry_current, program_for_ai_model

    for ai_model in AIModel.objects.filter(name__in=model_names):
        program = program_for_ai_model(ai_model=ai_model)
        if program is None or accrual_entry_current(program=program, day=day) is None:
            return False
    return True


def demo_night_run(*, day: dt.date, model_names: list[str], say: Say) -> bool:
    """Run the night of ``day`` unless it is posted; True when it ran. Its report is passed on line by line."""
    if demo_night_posted(day=day, model_names=model_names):
        say(f"  the night of {day} is already posted")
        return False
    out = io.StringIO()
    # The job's report is relayed below; its progress bar goes to stderr as the command draws it.
    call_command("run_nightly", date=day.isoformat(), stdout=out)
    for line in out.getvalue().splitlines():
        if line.strip():
            say(f"  {line}")
    if not demo_night_posted(day=day, model_names=model_names):
        raise RuntimeError(f"run_nightly --date {day} finished, but not every demo program has its accrual entry")
    return True
