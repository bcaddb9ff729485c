"""Helpers of the story tests: signing in as a person does (password, then a TOTP code for staff), and the demo's
data (``manage.py demo --quick``) or a paid payout run built through the services."""

from __future__ import annotations

import csv
import io

from django.core.management import call_command

from demo.corpus import DEMO_PASSWORD, demo_totp_secret
from tests.accounts.totp import totp_code


def sign_in(page, email: str, *, password: str = DEMO_PASSWORD, totp_secret: str | None = None,
            landing: str = "**/") -> None:
    """The login form, and for staff the authenticator step, exactly as a person fills them in."""
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign In").click()
    if totp_secret is not None:
        page.wait_for_url("**/accounts/2fa/authenticate/**")
        page.get_by_label("Code").fill(totp_code(totp_secret))
        page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(landing)


def sign_in_demo_staff(page, email: str, landing: str = "**/") -> None:
    sign_in(page, email, totp_secret=demo_totp_secret(email), landing=landing)


def run_quick_demo() -> str:
    out = io.StringIO()
    call_command("demo", quick=True, threads=1, stdout=out)
    return out.getvalue()


def statement_csv_header(data: bytes) -> dict[str, str]:
    """The key/value rows a statement CSV starts with (up to the blank row)."""
    header: dict[str, str] = {}
    for row in csv.reader(io.StringIO(data.decode("utf-8"))):
        if not row:
            break
        header[row[0]] = row[1]
    return header


def no_sideways_scroll(page, width: int) -> bool:
    """Nothing wider than the phone: a mobile browser would otherwise zoom the whole page out to fit it."""
    return page.evaluate("document.documentElement.scrollWidth") <= width
