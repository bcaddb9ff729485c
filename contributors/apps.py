from __future__ import annotations

from django.apps import AppConfig


class ContributorsConfig(AppConfig):
    name = "contributors"
    label = "contributors"
    verbose_name = "Contributors and works"
    default_auto_field = "django.db.models.BigAutoField"
