from __future__ import annotations

from django.apps import AppConfig


class AttributionConfig(AppConfig):
    name = "attribution"
    label = "attribution"
    verbose_name = "Models, generations and attribution"
    default_auto_field = "django.db.models.BigAutoField"
