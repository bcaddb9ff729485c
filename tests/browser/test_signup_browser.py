"""A visitor signs up in a real browser and lands in the portal as a contributor."""

from __future__ import annotations

import pytest

from accounts.roles import user_roles
from contributors.models import Contributor

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_visitor_signs_up_and_lands_in_the_portal(new_page, screenshot):
    page = new_page()
    page.goto("/")
    screenshot(page, "home-desktop")

    page.get_by_role("link", name="Register as a contributor").click()
    page.get_by_label("Email").fill("new.artist@example.org")
    page.get_by_label("Name to show on your works").fill("Nina Simone")
    page.get_by_label("Country (optional)").select_option("US")
    page.locator("#id_password1").fill("blue notes on a grand piano")
    page.get_by_label("Password (again)").fill("blue notes on a grand piano")
    screenshot(page, "signup-desktop")
    page.get_by_role("button", name="Sign Up").click()

    page.wait_for_url("**/portal/")
    assert page.get_by_role("heading", level=1).inner_text() == "Hello, Nina Simone"
    contributor = Contributor.objects.get(user__email="new.artist@example.org")
    assert contributor.country == "US"
    assert user_roles(contributor.user) == {"contributor"}
    assert page.console_errors == []
