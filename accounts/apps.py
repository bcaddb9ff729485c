from __future__ import annotations

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _sync_roles(sender, **kwargs) -> None:
    # post_migrate is sent once per app, in INSTALLED_APPS order, and each app's permissions are created by
    # its own signal: only after the last app's are they all there. Syncing then makes every role group
    # match ROLE_PERMISSIONS right after `migrate`, including the apps listed after this one.
    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if with_models and sender.label != with_models[-1].label:
        return
    from accounts.roles import roles_sync

    roles_sync()


class AccountsConfig(AppConfig):
    name = "accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_sync_roles, dispatch_uid="accounts.sync_roles")
