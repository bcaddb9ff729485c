"""The contributor's payout-account pages: status, and the round trip through Stripe's hosted onboarding.

Each view acts on the signed-in contributor's own account only (no ids in URLs, so no one else's to reach).
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.roles import CONTRIBUTOR, role_required
from contributors.models import Contributor
from payouts import stripe_client
from payouts.selectors import bank_payout_list, connected_account_get
from payouts.services import (
    connected_account_get_or_create,
    connected_account_onboarding_link,
    connected_account_sync,
)

logger = logging.getLogger(__name__)

_STATUS_MESSAGES = {
    "active": (messages.SUCCESS, "Your payout account is ready: payouts will reach you."),
    "onboarding": (messages.INFO, "Stripe still needs a few details (or is verifying them)."),
    "restricted": (messages.WARNING, "Stripe has restricted your payout account; see what it needs below."),
}


# Stripe's requirement paths, in words a contributor understands (several paths share one label).
_REQUIREMENT_LABELS = [
    ("external_account", "A bank account for payouts"),
    ("tos_acceptance.", "Accepting Stripe's terms of service"),
    ("individual.dob.", "Your date of birth"),
    ("individual.address.", "Your home address"),
    ("individual.verification.", "An identity document"),
    ("individual.first_name", "Your legal name"),
    ("individual.last_name", "Your legal name"),
    ("individual.email", "Your e-mail address"),
    ("individual.phone", "Your phone number"),
    ("individual.id_number", "Your tax identification number"),
    ("individual.ssn_last_4", "Your tax identification number"),
    ("business_type", "The kind of account (individual or company)"),
    ("business_profile.", "A description of your work"),
]
_DISABLED_REASONS = {
    "requirements.past_due": "Stripe needs more information before it can pay you.",
    "requirements.pending_verification": "Stripe is verifying the information you gave.",
    "under_review": "Stripe is reviewing the account.",
    "listed": "Stripe is reviewing the account.",
    "platform_paused": "Payouts to this account are paused by the platform.",
    "action_required.requested_capabilities": "Stripe needs more information for this kind of payout.",
    "rejected.fraud": "Stripe has closed this account.",
    "rejected.terms_of_service": "Stripe has closed this account.",
    "rejected.listed": "Stripe has closed this account.",
    "rejected.other": "Stripe has closed this account.",
}


def requirement_labels(paths: list[str]) -> list[str]:
    """Readable, de-duplicated labels for Stripe requirement paths (unknown paths are shown as they are)."""
    labels: list[str] = []
    for item in paths:
        label = next((text for prefix, text in _REQUIREMENT_LABELS if item.startswith(prefix)), item)
        if label not in labels:
            labels.append(label)
    return labels


def _own_contributor(request: HttpRequest) -> Contributor:
    contributor = Contributor.objects.filter(user_id=request.user.pk).first()
    if contributor is None:
        raise Http404
    return contributor


def _stripe_error(request: HttpRequest, exc: stripe_client.StripeFailure) -> HttpResponse:
    logger.warning("payout account: %s", exc)
    if isinstance(exc, stripe_client.StripeUnavailable):
        messages.error(request, "We could not reach Stripe just now. Please try again in a few minutes.")
    else:
        # Stripe's own message is for us (it names parameters and keys), not for the contributor.
        messages.error(request, "Stripe could not set up your payout account just now. Please try again later; "
                       "if it keeps happening, contact support.")
    return redirect("payout_account:detail")


@require_GET
@login_required
@role_required(CONTRIBUTOR)
def payout_account_detail(request: HttpRequest) -> HttpResponse:
    contributor = _own_contributor(request)
    account = connected_account_get(contributor=contributor)
    context = {
        "contributor": contributor,
        "account": account,
        "status": account.payout_status if account else Contributor.PayoutStatus.NONE,
        "status_label": Contributor.PayoutStatus(account.payout_status if account else "none").label,
        "bank_payouts": bank_payout_list(connected_account=account) if account else [],
        "requirements": requirement_labels(account.requirements_due) if account else [],
        "disabled_reason_text": (
            _DISABLED_REASONS.get(account.disabled_reason, account.disabled_reason) if account else ""
        ),
    }
    return render(request, "payouts/payout_account.html", context)


@require_POST
@login_required
@role_required(CONTRIBUTOR)
def payout_account_start(request: HttpRequest) -> HttpResponse:
    """Create the Express account if needed (idempotent) and send the contributor to Stripe."""
    contributor = _own_contributor(request)
    try:
        account = connected_account_get_or_create(contributor=contributor, actor=request.user)
        if account.payout_status == "active" and not account.requirements_due:
            messages.info(request, "Your payout account is already set up.")
            return redirect("payout_account:detail")
        url = connected_account_onboarding_link(connected_account=account)
    except stripe_client.StripeFailure as exc:
        return _stripe_error(request, exc)
    return redirect(url)


@require_GET
@login_required
@role_required(CONTRIBUTOR)
def payout_account_refresh(request: HttpRequest) -> HttpResponse:
    """Stripe's ``refresh_url``: the link expired or was already used; make a fresh one."""
    account = connected_account_get(contributor=_own_contributor(request))
    if account is None:
        return redirect("payout_account:detail")
    try:
        url = connected_account_onboarding_link(connected_account=account)
    except stripe_client.StripeFailure as exc:
        return _stripe_error(request, exc)
    return redirect(url)


@require_GET
@login_required
@role_required(CONTRIBUTOR)
def payout_account_return(request: HttpRequest) -> HttpResponse:
    """Stripe's ``return_url``: reached whether or not onboarding was finished, so read the account again."""
    account = connected_account_get(contributor=_own_contributor(request))
    if account is None:
        return redirect("payout_account:detail")
    try:
        account = connected_account_sync(connected_account=account, actor=request.user,
                                         reason="contributor returned from Stripe onboarding")
    except stripe_client.StripeFailure as exc:
        return _stripe_error(request, exc)
    level, text = _STATUS_MESSAGES.get(account.payout_status, (messages.INFO, ""))
    if text:
        messages.add_message(request, level, text)
    return redirect("payout_account:detail")
