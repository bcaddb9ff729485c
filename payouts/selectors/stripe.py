"""Reading what Stripe told us: connected accounts, bank payouts, transfer mirrors, Stripe events."""

from __future__ import annotations

from django.db.models import QuerySet

from contributors.models import Contributor
from payouts.models import BankPayout, ConnectedAccount, StripeEvent, StripeTransfer


def connected_account_get(*, contributor: Contributor) -> ConnectedAccount | None:
    return ConnectedAccount.objects.filter(contributor=contributor).first()


def connected_account_get_by_stripe_id(*, stripe_account_id: str) -> ConnectedAccount | None:
    return ConnectedAccount.objects.filter(stripe_account_id=stripe_account_id).first()


def bank_payout_list(*, connected_account: ConnectedAccount, limit: int = 10) -> list[BankPayout]:
    return list(BankPayout.objects.filter(connected_account=connected_account).order_by("-stripe_created_at")[:limit])


def stripe_transfer_list(*, transfer_group: str | None = None,
                         destination_account_id: str | None = None) -> QuerySet[StripeTransfer]:
    transfers = StripeTransfer.objects.all()
    if transfer_group is not None:
        transfers = transfers.filter(transfer_group=transfer_group)
    if destination_account_id is not None:
        transfers = transfers.filter(destination_account_id=destination_account_id)
    return transfers


def stripe_event_list(*, status: str | None = None, type: str | None = None) -> QuerySet[StripeEvent]:
    events = StripeEvent.objects.all()
    if status is not None:
        events = events.filter(status=status)
    if type is not None:
        events = events.filter(type=type)
    return events
