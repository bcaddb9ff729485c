"""What happens on Stripe's side without an API call of the platform: a contributor finishing the hosted
onboarding form, Stripe verifying or restricting an account, a connected account paying out to its bank."""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from payouts.fakestripe import objects
from payouts.fakestripe.errors import FakeStripeError

if TYPE_CHECKING:
    import threading


class Simulations:
    """Mixed into FakeStripe: these methods use its lock, objects and events."""

    if TYPE_CHECKING:  # provided by FakeStripe
        lock: threading.RLock
        state: dict[str, Any]

        def get(self, object_id: str, *, kind: str, owner: str | None = None, param: str = "id") -> dict[str, Any]:
            ...

        def put(self, obj: dict[str, Any], *, owner: str | None = None) -> dict[str, Any]: ...

        def emit(self, event_type: str, obj: dict[str, Any], *, account: str | None = None,
                 previous: dict[str, Any] | None = None, ctx: Any = None) -> dict[str, Any]: ...

        def balance_of(self, owner: str | None, currency: str) -> dict[str, int]: ...

        def _save(self) -> None: ...

    def _account_change(self, account_id: str, mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        with self.lock:
            account = self.get(account_id, kind="account", param="account")
            before = copy.deepcopy(account)
            mutate(account)
            previous = objects.previous_attributes(before, account)
            if previous:
                self.emit("account.updated", account, account=account_id, previous=previous)
            self._save()
            return copy.deepcopy(account)

    def complete_onboarding(self, account_id: str, *, pending_verification: bool = False) -> dict[str, Any]:
        """The contributor finished Stripe's hosted form: details submitted, a bank account on file, and the
        requested capabilities active (or pending while Stripe verifies the identity documents)."""

        def mutate(account: dict[str, Any]) -> None:
            account["details_submitted"] = True
            account["business_type"] = account["business_type"] or "individual"
            account["tos_acceptance"] = {"date": int(time.time()), "ip": "127.0.0.1", "user_agent": "fakestripe"}
            banks = account["external_accounts"]
            if not banks["data"]:
                banks["data"].append(objects.bank_account(account_id=account["id"],
                                                          currency=account["default_currency"],
                                                          country=account["country"]))
                banks["total_count"] = 1
            if pending_verification:
                account["capabilities"] = dict.fromkeys(account["capabilities"], "pending")
                account["requirements"] = objects.requirements(
                    currently_due=[], pending_verification=["individual.verification.document"],
                    disabled_reason="requirements.pending_verification", eventually_due=[])
                account["payouts_enabled"] = False
            else:
                _activate(account)

        return self._account_change(account_id, mutate)

    def activate_account(self, account_id: str) -> dict[str, Any]:
        """Stripe finished verifying (or the contributor resolved every requirement)."""
        return self._account_change(account_id, _activate)

    def restrict_account(self, account_id: str, *, disabled_reason: str = "requirements.past_due",
                         currently_due: list[str] | None = None) -> dict[str, Any]:
        """Stripe needs more information (or rejected the account): capabilities go inactive."""
        due = list(currently_due if currently_due is not None else ["individual.verification.document"])

        def mutate(account: dict[str, Any]) -> None:
            account["capabilities"] = dict.fromkeys(account["capabilities"], "inactive")
            account["requirements"] = objects.requirements(currently_due=due, disabled_reason=disabled_reason)
            account["payouts_enabled"] = False
            account["charges_enabled"] = False

        return self._account_change(account_id, mutate)

    def simulate_payout(self, account_id: str, *, amount: int, currency: str = "usd", outcome: str = "paid",
                        failure_code: str | None = None) -> dict[str, Any]:
        """A payout from a connected account's balance to its bank: payout.created, then payout.paid or
        payout.failed (a failed payout's funds return to the balance)."""
        if outcome not in ("paid", "failed"):
            raise ValueError("outcome must be 'paid' or 'failed'")
        if amount <= 0:
            raise ValueError("amount must be positive")
        with self.lock:
            account = self.get(account_id, kind="account", param="account")
            currency = currency.lower()
            balance = self.balance_of(account_id, currency)
            if balance["available"] < amount:
                raise FakeStripeError(400, "Insufficient funds in the connected account's balance.",
                                      code="balance_insufficient", param="amount")
            now = int(time.time())
            payout_id = objects.new_id("po")
            txn = self.put(objects.balance_transaction(amount=-amount, currency=currency, created=now,
                                                       source=payout_id, type_="payout",
                                                       reporting_category="payout"), owner=account_id)
            bank = account["external_accounts"]["data"][0]["id"] if account["external_accounts"]["data"] else None
            payout = objects.payout(payout_id=payout_id, amount=amount, currency=currency, created=now,
                                    destination=bank, status="in_transit", failure_code=None,
                                    balance_transaction_id=txn["id"])
            self.put(payout, owner=account_id)
            balance["available"] -= amount
            self.emit("payout.created", payout, account=account_id)
            if outcome == "paid":
                payout["status"] = "paid"
                self.emit("payout.paid", payout, account=account_id, previous={"status": "in_transit"})
            else:
                code = failure_code or "account_closed"
                failure_txn = self.put(objects.balance_transaction(
                    amount=amount, currency=currency, created=now, source=payout_id, type_="payout_failure",
                    reporting_category="payout_reversal"), owner=account_id)
                balance["available"] += amount
                payout.update(status="failed", failure_code=code,
                              failure_message=objects.PAYOUT_FAILURES.get(code, "The payout failed."),
                              failure_balance_transaction=failure_txn["id"])
                self.emit("payout.failed", payout, account=account_id, previous={"status": "in_transit"})
            self._save()
            return copy.deepcopy(payout)

    def set_balance(self, currency: str, amount: int) -> None:
        with self.lock:
            self.balance_of(None, currency.lower())["available"] = amount
            self._save()

    # --- Connect onboarding pages ------------------------------------------------------------------------

    def link_open(self, account_id: str, token: str) -> tuple[str, dict[str, Any]]:
        """Visiting an Account Link: ("page", details) the first time within its lifetime; otherwise
        ("redirect", refresh_url), because a link works once and expires (Stripe's rule)."""
        with self.lock:
            link = self.state["links"].get(token)
            if link is None or link["account"] != account_id:
                return "missing", {}
            if link["used"] or time.time() > link["expires_at"]:
                return "redirect", {"url": link["refresh_url"]}
            link["used"] = True
            session = secrets.token_urlsafe(16)
            self.state["sessions"][session] = {"account": account_id, "return_url": link["return_url"],
                                               "refresh_url": link["refresh_url"]}
            account = self.state["objects"][account_id]
            self._save()
            return "page", {"session": session, "account": copy.deepcopy(account),
                            "return_url": link["return_url"]}

    def link_submit(self, session: str, action: str) -> str:
        """The form on the hosted page was submitted; returns where the browser goes next."""
        with self.lock:
            info = self.state["sessions"].pop(session, None)
            self._save()
        if info is None:
            raise ValueError("this onboarding session is over; start again from the platform")
        if action == "complete":
            self.complete_onboarding(info["account"])
        elif action == "pending":
            self.complete_onboarding(info["account"], pending_verification=True)
        return info["return_url"]


def _activate(account: dict[str, Any]) -> None:
    account["capabilities"] = dict.fromkeys(account["capabilities"], "active")
    account["requirements"] = objects.requirements(currently_due=[])
    account["payouts_enabled"] = True
    account["charges_enabled"] = account["capabilities"].get("card_payments") == "active"
