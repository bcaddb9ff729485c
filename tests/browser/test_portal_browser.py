"""A contributor's day in a real browser: log in, add a work by upload, find it; another contributor
cannot reach it. Desktop and phone-sized screenshots of the pages are saved for a person to look at."""

from __future__ import annotations

import pytest

from contributors.models import Work
from tests.browser.conftest import PHONE
from tests.conftest import PASSWORD, make_user
from tests.contributors.conftest import PROSE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def people(transactional_db):
    from contributors.services import contributor_register

    ada = contributor_register(user=make_user(username="ada.browser"), display_name="Ada Lovelace")
    bob = contributor_register(user=make_user(username="bob.browser"), display_name="Bob Marley")
    return ada, bob


def log_in(page, user) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/portal/")


def test_a_contributor_uploads_a_text_work_and_finds_it_in_the_list(new_page, people, screenshot, tmp_path):
    ada, _ = people
    page = new_page()
    log_in(page, ada.user)
    screenshot(page, "dashboard-empty-desktop")

    # add a work by uploading a text file
    page.get_by_role("link", name="Add a work").first.click()
    story = tmp_path / "lighthouse.txt"
    story.write_text(PROSE)
    page.get_by_label("Title").fill("The lighthouse keeper")
    page.get_by_label("Description").fill("A short story about fog, gulls and a book.")
    page.get_by_label("Upload a file").set_input_files(str(story))
    screenshot(page, "work-add-desktop")
    page.get_by_role("button", name="Register the work").click()

    # the detail page: kind read from the content, sole owner at 100%
    page.wait_for_url("**/portal/works/*/")
    assert page.get_by_role("heading", level=1).inner_text() == "The lighthouse keeper"
    assert "is registered as text" in page.locator(".messages").inner_text()
    owners = page.get_by_role("table").filter(has_text="Owner").inner_text()
    assert "Ada Lovelace" in owners
    assert "100.00%" in owners
    screenshot(page, "work-detail-desktop")

    # the list shows it, and the search finds it
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Works").click()
    assert page.get_by_role("link", name="The lighthouse keeper").is_visible()
    page.get_by_label("Search").fill("lighthouse")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("table.works tbody tr").count() == 1
    screenshot(page, "works-list-desktop")

    work = Work.objects.get()
    assert (work.kind, work.title, work.size_bytes) == ("text", "The lighthouse keeper", len(PROSE.encode()))
    assert page.console_errors == []


def test_a_refused_upload_explains_itself_in_the_page(new_page, people, screenshot, tmp_path):
    ada, _ = people
    page = new_page()
    log_in(page, ada.user)
    binary = tmp_path / "tool.bin"
    binary.write_bytes(open("/bin/true", "rb").read())  # noqa: SIM115 - read once, closed by GC

    page.goto("/portal/works/new/")
    page.get_by_label("Title").fill("Not a work")
    page.get_by_label("Upload a file").set_input_files(str(binary))
    page.get_by_role("button", name="Register the work").click()

    alert = page.get_by_role("alert")
    assert "The work was not saved" in alert.inner_text()
    field_error = page.locator("#id_file_error, .errorlist").first.inner_text()
    assert "ELF files (application/x-executable) are not accepted" in field_error
    screenshot(page, "work-add-refused-desktop")
    assert Work.objects.count() == 0


def test_another_contributor_gets_404_on_the_work_url(new_page, people):
    ada, bob = people
    from contributors.services import Content, work_create

    work = work_create(
        created_by=ada, title="Ada's private draft", actor=ada.user,
        content=Content(data=PROSE.encode(), field="file", file_name="draft.txt"),
    ).work
    page = new_page()
    log_in(page, bob.user)

    response = page.goto(f"/portal/works/{work.pk}/")

    assert response.status == 404
    assert "Ada's private draft" not in page.content()
    api = page.request.get(f"/api/v1/works/{work.pk}/")
    assert api.status == 404


def test_the_portal_on_a_phone(new_page, people, screenshot):
    ada, _ = people
    from contributors.services import Content, work_create, work_opt_out

    for i, title in enumerate(["Harbour at dawn", "Notes on tides", "A letter to the sea"]):
        registration = work_create(
            created_by=ada, title=title, actor=ada.user,
            content=Content(data=f"{i}\n{PROSE}".encode(), field="file", file_name=f"w{i}.txt"),
        )
    work_opt_out(work=registration.work, actor=ada.user, requested_by=ada)
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    log_in(page, ada.user)
    screenshot(page, "dashboard-phone")

    page.goto("/portal/works/")
    screenshot(page, "works-list-phone")
    # No sideways scrolling on a phone: the table stacks into cards.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_role("link", name="A letter to the sea").click()
    assert "Opted out" in page.get_by_role("heading", name="Training").locator("..").inner_text()
    screenshot(page, "work-detail-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
