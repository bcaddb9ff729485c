"""Load the demo: the people of each role with a fixed, printed password, and a small catalog. Idempotent."""

from __future__ import annotations

import io

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.roles import CATALOG_ADMIN, CONTRIBUTOR, FINANCE, role_grant, user_has_role

DEMO_PASSWORD = "demo-royalties-2026"  # noqa: S105 - printed on purpose; only ever used by the demo
DEMO_PEOPLE = [
    ("ada@demo.example", CONTRIBUTOR, "Contributor"),
    ("grace@demo.example", CONTRIBUTOR, "Second contributor (co-owner, disputes one work)"),
    ("finance.a@demo.example", FINANCE, "Finance user A (creates payout runs)"),
    ("finance.b@demo.example", FINANCE, "Finance user B (approves them)"),
    ("catalog@demo.example", CATALOG_ADMIN, "Catalog admin"),
]
DISPLAY_NAMES = {"ada@demo.example": "Ada Lovelace", "grace@demo.example": "Grace Hopper"}

ESSAY = (
    "Notes on the Analytical Engine\n\n"
    "The engine might act upon other things besides number, were objects found whose mutual fundamental\n"
    "relations could be expressed by those of the abstract science of operations. Supposing, for instance,\n"
    "that the fundamental relations of pitched sounds in the science of harmony were susceptible of such\n"
    "expression, the engine might compose elaborate pieces of music of any degree of complexity.\n"
)
BERNOULLI = (
    "from fractions import Fraction\n\n\n"
    "def bernoulli(n: int) -> list[Fraction]:\n"
    "    \"\"\"The first n+1 Bernoulli numbers (B1 = -1/2).\"\"\"\n"
    "    a = [Fraction(0)] * (n + 1)\n"
    "    out = []\n"
    "    for m in range(n + 1):\n"
    "        a[m] = Fraction(1, m + 1)\n"
    "        for j in range(m, 0, -1):\n"
    "            a[j - 1] = j * (a[j - 1] - a[j])\n"
    "        out.append(a[0])\n"
    "    return out\n"
)
COMPILER_NOTE = (
    "On teaching machines to write programs\n\n"
    "It is much easier to apologise than to get permission. A compiler is a program that writes programs;\n"
    "the people who said it could not be done were, as usual, busy doing something else.\n"
)


def _png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (96, 96), "#f4efe6")
    draw = ImageDraw.Draw(image)
    for i in range(0, 96, 12):
        draw.line([(0, i), (95, 95 - i)], fill="#2456c7", width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Command(BaseCommand):
    help = "Create (or refresh) the demo data; safe to run again."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args, host: str, port: str, **options) -> None:
        from contributors.services import contributor_register

        User = get_user_model()
        with transaction.atomic():
            for email, role, _label in DEMO_PEOPLE:
                user, created = User.objects.get_or_create(username=email, defaults={"email": email})
                if created:
                    user.set_password(DEMO_PASSWORD)
                    user.save()
                # Demo addresses receive no mail: mark them verified so mandatory verification lets them in.
                EmailAddress.objects.update_or_create(
                    user=user, email=email, defaults={"verified": True, "primary": True}
                )
                if role == CONTRIBUTOR and not hasattr(user, "contributor"):
                    contributor_register(user=user, display_name=DISPLAY_NAMES[email], actor="command:demo")
                elif not user_has_role(user, role):
                    role_grant(user=user, role=role)
                self.stdout.write(f"  {'created' if created else 'kept'} {email} ({role})")
            self._catalog()
        self.stdout.write(self.style.SUCCESS(f"\nThe platform will be at http://{host}:{port}/"))
        self.stdout.write(f"Logins (password for all: {DEMO_PASSWORD}):")
        for email, _role, label in DEMO_PEOPLE:
            self.stdout.write(f"  {label:50s} {email}")
        self.stdout.write("Staff (finance, catalog) set up an authenticator app (TOTP) at their first login.")

    def _catalog(self) -> None:
        """A few works of each kind for Ada, one co-owned with Grace, and one open dispute (Grace's copy)."""
        from contributors.models import Contributor, Work
        from contributors.services import Content, ownership_set, work_create, work_opt_out

        ada = Contributor.objects.get(user__email="ada@demo.example")
        grace = Contributor.objects.get(user__email="grace@demo.example")
        if Work.objects.filter(ownerships__contributor__in=[ada, grace]).exists():
            self.stdout.write("  kept the demo catalog")
            return
        actor = "command:demo"

        def register(owner, title, data: bytes, name: str, **kwargs):
            content = Content(data=data, field="file", file_name=name)
            return work_create(created_by=owner, title=title, content=content, actor=actor, **kwargs)

        essay = register(ada, "Notes on the Analytical Engine", ESSAY.encode(), "notes.txt").work
        register(ada, "Bernoulli numbers", BERNOULLI.encode(), "bernoulli.py")
        pattern = register(ada, "Punched-card pattern", _png(), "pattern.png").work
        work_opt_out(work=pattern, actor=actor, requested_by=ada, reason="demo: not for training")
        note = register(grace, "On teaching machines to write programs", COMPILER_NOTE.encode(), "compilers.txt")
        ownership_set(work=note.work, shares={grace: 6000, ada: 4000}, actor=actor, reason="demo: co-written")
        register(grace, "Analytical Engine notes (my copy)", ESSAY.encode(), "engine.txt")  # opens a dispute
        self.stdout.write(f"  created the demo catalog (works #{essay.pk}.., one open dispute)")
