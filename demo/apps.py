from __future__ import annotations

from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The offline demo: ``manage.py demo`` plays every role end to end on the embedded default."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "demo"
    verbose_name = "Demo"
