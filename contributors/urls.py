"""The contributor portal under /portal/ (earnings, statements and the payout account are other apps')."""

from __future__ import annotations

from django.urls import path

from contributors import views

app_name = "contributors"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("works/", views.work_list, name="work_list"),
    path("works/new/", views.work_add, name="work_add"),
    path("works/<int:pk>/", views.work_detail, name="work_detail"),
    path("works/<int:pk>/edit/", views.work_edit, name="work_edit"),
    path("works/<int:pk>/content/", views.work_content, name="work_content"),
    path("works/<int:pk>/opt-out/", views.work_opt_out_view, name="work_opt_out"),
    path("works/<int:pk>/opt-out/withdraw/", views.work_opt_out_withdraw_view, name="work_opt_out_withdraw"),
    path("profile/", views.profile, name="profile"),
]
