from __future__ import annotations

from django.urls import path

from contributors import apis

app_name = "contributors_api"
urlpatterns = [
    path("works/", apis.WorkListApi.as_view(), name="work_list"),
    path("works/<int:pk>/", apis.WorkDetailApi.as_view(), name="work_detail"),
    path("opt-outs/", apis.OptOutExportApi.as_view(), name="opt_out_export"),
]
