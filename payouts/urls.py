"""Mounted at /finance/: payout runs, reconciliation, the ledger explorer, statements (finance users only)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from payouts import finance_views as views
from payouts import ledger_views

app_name = "payouts"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.run_list, name="run_list"),
    path("runs/new/", views.run_create, name="run_create"),
    path("runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("runs/<int:pk>/progress.json", views.run_progress, name="run_progress"),
    path("runs/<int:pk>/export.csv", views.run_export_csv, name="run_export"),
    path("runs/<int:pk>/submit/", views.run_submit, name="run_submit"),
    path("runs/<int:pk>/approve/", views.run_approve, name="run_approve"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run_cancel"),
    path("runs/<int:pk>/execute/", views.run_execute, name="run_execute"),
    path("runs/<int:pk>/retry/", views.run_retry, name="run_retry"),
    path("runs/<int:pk>/release/", views.run_release, name="run_release"),
    path("runs/<int:pk>/resume/", views.run_resume, name="run_resume"),
    path("reconciliation/", views.reconciliation_list, name="reconciliation_list"),
    path("reconciliation/<int:pk>/", views.reconciliation_detail, name="reconciliation_detail"),
    path("statements/<int:pk>/<str:fmt>/", views.statement_download, name="statement_download"),
    path("ledger/", ledger_views.ledger_entries, name="ledger_entries"),
    path("ledger/entries/<int:pk>/", ledger_views.ledger_entry_detail, name="ledger_entry"),
    path("ledger/accounts/", ledger_views.ledger_accounts, name="ledger_accounts"),
    path("ledger/export.csv", ledger_views.ledger_export_csv, name="ledger_export"),
]
