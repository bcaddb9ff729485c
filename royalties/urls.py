"""Root URLs: the only place every app's routes are wired together."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from royalties.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("portal/payout-account/", include("payouts.portal_urls")),
    path("portal/statements/", include("payouts.statement_urls")),
    path("portal/earnings/", include("attribution.portal_urls")),
    path("portal/", include("contributors.urls")),
    path("finance/", include("payouts.urls")),
    path("catalog/", include("attribution.urls")),
    path("api/v1/", include("royalties.api_urls")),
    path("webhooks/", include("payouts.webhook_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
