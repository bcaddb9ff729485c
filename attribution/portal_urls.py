"""The contributor's earnings pages, mounted at /portal/earnings/."""

from __future__ import annotations

from django.urls import path

from attribution import portal_views

app_name = "earnings"
urlpatterns = [
    path("", portal_views.earnings, name="overview"),
    path("works/<int:work_id>/", portal_views.earnings_work, name="work"),
    path("generations/<int:generation_id>/media/", portal_views.generation_media, name="generation_media"),
]
