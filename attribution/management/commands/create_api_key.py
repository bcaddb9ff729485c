"""manage.py create_api_key: a key for a model service, printed once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from attribution.models import AIModel
from attribution.selectors import model_version_by_ref
from attribution.services.api_keys import api_key_create
from attribution.services.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Create an API key for a model service, scoped to one model version (--model-version) or to every "
        "version of a model (--model). The key is printed once and only its hash is stored."
    )

    def add_arguments(self, parser) -> None:
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--model-version", help='Version id or "<model>@<label>".')
        scope.add_argument("--model", help="AI model name: the key may log to all its versions.")
        parser.add_argument("--name", required=True, help="What the key is for, e.g. 'storyteller production'.")

    def handle(self, *args, **options) -> None:
        ai_model = version = None
        if options["model_version"]:
            version = model_version_by_ref(ref=options["model_version"])
            if version is None:
                raise CommandError(f"no model version {options['model_version']!r}")
        else:
            ai_model = AIModel.objects.filter(name=options["model"]).first()
            if ai_model is None:
                raise CommandError(f"no AI model named {options['model']!r}")
        try:
            created = api_key_create(name=options["name"], ai_model=ai_model, model_version=version,
                                     actor_label="command:create_api_key")
        except ServiceError as exc:
            raise CommandError("; ".join(f"{e.field}: {e.message}" for e in exc.errors) or exc.detail) from exc
        key = created.api_key
        self.stderr.write(f"API key {key.prefix} ({key.scope_label}). Store it now: it is not shown again.")
        self.stdout.write(created.secret)
