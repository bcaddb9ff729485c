"""Read-only admin views of what Stripe told us (changes go through services, never the admin)."""

from __future__ import annotations

from django.contrib import admin

from payouts.models import BankPayout, ConnectedAccount, PayoutRun, Statement, StripeEvent, StripeTransfer


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ConnectedAccount)
class ConnectedAccountAdmin(_ReadOnly):
    list_display = ["stripe_account_id", "contributor", "transfers_capability", "details_submitted",
                    "disabled_reason", "stripe_synced_at"]
    list_filter = ["transfers_capability", "details_submitted"]
    search_fields = ["stripe_account_id", "contributor__display_name"]


@admin.register(StripeEvent)
class StripeEventAdmin(_ReadOnly):
    list_display = ["event_id", "type", "account", "status", "attempts", "received_at", "processed_at"]
    list_filter = ["status", "type"]
    search_fields = ["event_id", "account"]


@admin.register(StripeTransfer)
class StripeTransferAdmin(_ReadOnly):
    list_display = ["stripe_transfer_id", "destination_account_id", "amount_minor", "amount_reversed_minor",
                    "currency", "transfer_group", "stripe_created_at"]
    search_fields = ["stripe_transfer_id", "destination_account_id", "transfer_group"]


@admin.register(BankPayout)
class BankPayoutAdmin(_ReadOnly):
    list_display = ["stripe_payout_id", "connected_account", "amount_minor", "currency", "status", "failure_code"]
    list_filter = ["status"]


# Payout runs and statements move money and explain it: finance works with them on the /finance/ pages, through
# the services (maker-checker, audit); the admin only shows them.


@admin.register(PayoutRun)
class PayoutRunAdmin(_ReadOnly):
    list_display = ["id", "status", "currency", "as_of", "payout_count", "total_minor", "created_by", "approved_by",
                    "created_at"]
    list_filter = ["status", "currency"]


@admin.register(Statement)
class StatementAdmin(_ReadOnly):
    list_display = ["number", "kind", "contributor", "currency", "period_start", "period_end",
                    "transfer_micros", "closing_balance_micros", "issued_at"]
    list_filter = ["kind", "currency"]
    search_fields = ["number", "contributor__display_name"]
    exclude = ["lines"]
