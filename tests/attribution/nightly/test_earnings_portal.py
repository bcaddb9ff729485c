"""The contributor's earnings pages: the ledger's numbers, a chart with its table, the generations behind a
work next to it, and nobody else's data (404)."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.core.files.base import ContentFile
from django.db.models import Sum

from attribution.models import Attribution
from contributors.services import contributor_ensure
from payouts.money import format_micros
from royalties.ledger.models import Accrual
from royalties.ledger.selectors import accrual_totals_by_period
from tests.attribution.nightly.conftest import DAY, owed
from tests.conftest import make_user

PASSAGE = "every unhappy family is unhappy in its own way said the old novelist to the young clerk"
NOVEL = f"all happy families are alike but {PASSAGE} who wrote it down"


def png_bytes(shade: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (16, 16), color=shade).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def earnings(world):
    """Alice (a contributor who can log in) owns a river work and co-owns a novel; Bob owns a dragon work.
    Two nights: DAY and the day before."""
    alice = contributor_ensure(user=make_user("contributor"))
    bob = contributor_ensure(user=make_user("contributor"))
    river = world.work("a quiet river runs through the forest", alice, title="River song")
    novel = world.work(NOVEL, {alice: 2_500, bob: 7_500}, title="The novel")
    dragon = world.work("a dragon sleeps in the castle", bob, title="Dragon tale")
    ai_model, _program = world.program(pool_bps=2_000, baseline_bps=1_000)
    version = world.version(ai_model, [river, novel, dragon])
    before = DAY - dt.timedelta(days=1)
    world.generation(version, "river forest", revenue_micros=40_000, day=before)
    copy = world.generation(version, f"the river said: {PASSAGE}.", revenue_micros=90_000)
    image = world.generation(version, "river at dusk", revenue_micros=30_000)
    image.output_media.save("dusk.png", ContentFile(png_bytes(120)))
    image.output_mime_type = "image/png"
    image.save(update_fields=["output_media", "output_mime_type"])
    dragon_only = world.generation(version, "dragon castle", revenue_micros=10_000)
    world.night(before)
    world.night(DAY)
    return {"alice": alice, "bob": bob, "river": river, "novel": novel, "dragon": dragon, "copy": copy,
            "image": image, "dragon_only": dragon_only, "before": before}


def range_query(day_from, day_to):
    return f"?date_from={day_from.isoformat()}&date_to={day_to.isoformat()}"


def test_the_earnings_page_shows_the_ledgers_figures_a_chart_and_its_table(earnings, login_as):
    alice = earnings["alice"]
    client = login_as(alice.user)

    response = client.get("/portal/earnings/" + range_query(earnings["before"] - dt.timedelta(days=1), DAY))

    assert response.status_code == 200
    body = response.content.decode()
    assert response.context["balance_micros"] == owed(alice) > 0
    assert format_micros(owed(alice), "USD") in body
    per_day = accrual_totals_by_period(contributor=alice, period_from=earnings["before"], period_to=DAY)
    assert [(r["period__day"], r["amount_micros"]) for r in response.context["by_period"]] == [
        (r["period__day"], r["amount_micros"]) for r in per_day]
    assert response.context["total_micros"] == owed(alice)  # everything she was ever owed is in these days
    by_work = {r["work_id"]: r["amount_micros"] for r in response.context["by_work"]}
    for work in (earnings["river"], earnings["novel"]):
        assert by_work[work.pk] == Accrual.objects.filter(contributor=alice, work=work).aggregate(
            s=Sum("amount_micros"))["s"]
        assert f"/portal/earnings/works/{work.pk}/" in body
    assert earnings["dragon"].pk not in by_work
    assert "Dragon tale" not in body
    # the chart: an accessible SVG (title + description), one bar per day, and the same figures in a table
    svg = re.search(r"<svg[^>]*role=\"img\"[^>]*>.*?</svg>", body, re.S).group(0)
    assert '<title id="earnings-chart-title">' in svg
    assert '<desc id="earnings-chart-desc">' in svg
    assert svg.count("<rect") == 3
    assert f"{DAY.isoformat()}: {format_micros(per_day[-1]['amount_micros'], 'USD')}" in svg
    assert 'id="earnings-table"' in body


def test_a_works_page_lists_the_generations_that_drew_on_it_next_to_the_work(earnings, login_as):
    alice, novel = earnings["alice"], earnings["novel"]
    client = login_as(alice.user)

    response = client.get(f"/portal/earnings/works/{novel.pk}/" + range_query(DAY, DAY))

    assert response.status_code == 200
    body = response.content.decode()
    assert PASSAGE in body  # the work itself
    [item] = response.context["items"]
    row = Attribution.objects.get(generation=earnings["copy"], work=novel)
    assert item["attribution"] == row
    assert row.copied
    assert format_micros(row.settled.amount_micros, "USD") in body
    assert f"<mark title=\"copied from your work\">{PASSAGE}</mark>" in body  # the copied words, marked
    assert "copied your work" in body
    ledger = Accrual.objects.filter(contributor=alice, work=novel, period__day=DAY)
    assert response.context["total_micros"] == ledger.aggregate(s=Sum("amount_micros"))["s"]
    assert response.context["copies"] == 1


def test_an_image_generation_is_shown_through_a_permission_checked_view(earnings, login_as, client):
    alice, bob, image = earnings["alice"], earnings["bob"], earnings["image"]
    page = login_as(alice.user).get(f"/portal/earnings/works/{earnings['river'].pk}/" + range_query(DAY, DAY))
    assert f"/portal/earnings/generations/{image.pk}/media/" in page.content.decode()

    response = client.get(f"/portal/earnings/generations/{image.pk}/media/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == png_bytes(120)
    assert "sandbox" in response["Content-Security-Policy"]

    # Bob's works did not draw on it (they only scored 0): he cannot see it, nor can someone with no works
    login_as(bob.user)
    assert client.get(f"/portal/earnings/generations/{image.pk}/media/").status_code == 404
    login_as(make_user("contributor"))
    assert client.get(f"/portal/earnings/generations/{image.pk}/media/").status_code == 404


def test_other_peoples_works_and_other_roles_get_404(earnings, login_as, client, finance_user):
    login_as(earnings["alice"].user)
    assert client.get(f"/portal/earnings/works/{earnings['dragon'].pk}/").status_code == 404
    assert client.get("/portal/earnings/works/999999999/").status_code == 404
    assert client.get(f"/portal/earnings/generations/{earnings['dragon_only'].pk}/media/").status_code == 404
    login_as(finance_user)
    assert client.get("/portal/earnings/").status_code == 404
    client.logout()
    assert client.get("/portal/earnings/").status_code == 302  # to the login page


def test_a_bad_range_answers_400_naming_the_field(earnings, login_as):
    client = login_as(earnings["alice"].user)

    backwards = client.get("/portal/earnings/" + range_query(DAY, DAY - dt.timedelta(days=3)))
    assert backwards.status_code == 400
    assert backwards.context["form"].errors == {"date_from": ["must be on or before the end date"]}
    garbage = client.get("/portal/earnings/?date_to=yesterday")
    assert garbage.status_code == 400
    assert "date_to" in garbage.context["form"].errors
    too_long = client.get("/portal/earnings/" + range_query(DAY - dt.timedelta(days=400), DAY))
    assert too_long.status_code == 400
    # the balance is still shown: it does not depend on the range
    assert format_micros(owed(earnings["alice"]), "USD") in backwards.content.decode()


def test_the_default_range_is_the_last_thirty_days(earnings, login_as):
    response = login_as(earnings["alice"].user).get("/portal/earnings/")

    assert response.status_code == 200
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    assert (response.context["day_from"], response.context["day_to"]) == (yesterday - dt.timedelta(days=29),
                                                                          yesterday)
    assert len(response.context["chart"].bars) == 30
