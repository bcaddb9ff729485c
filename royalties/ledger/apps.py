from __future__ import annotations

from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "royalties.ledger"
    label = "ledger"
    verbose_name = "Royalty ledger"
    default_auto_field = "django.db.models.BigAutoField"
