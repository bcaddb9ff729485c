"""The royalty platform's Django project: settings, root URLs and the Celery app."""

from __future__ import annotations

from royalties.celery import app as celery_app

__all__ = ["celery_app"]
