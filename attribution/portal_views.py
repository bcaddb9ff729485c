"""The contributor's earnings: balance, accruals per day and per work, a chart, and the generations behind a work.

Every figure of money comes from the ledger (balances are sums of postings, accruals its detail rows); the
generations come from the nightly job's attribution rows. A contributor sees only works they own: any other
work, or a generation that drew on none of theirs, answers 404 like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from attribution.nightly import selectors
from contributors.downloads import INLINE_IMAGE_TYPES
from contributors.selectors import work_get_for_contributor
from contributors.views import contributor_required
from royalties.ledger.selectors import (
    accrual_list,
    accrual_totals_by_period,
    accrual_totals_by_work,
    contributor_held_balance,
    contributor_payable_balance,
)

DEFAULT_DAYS = 30
MAX_DAYS = 366
# Up to this many days the chart has one bar per day; a longer range has one bar per month.
DAILY_BARS_MAX = 92
TOP_GENERATIONS = 25


def utc_yesterday() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=1)


class EarningsRangeForm(forms.Form):
    """The days shown (inclusive, UTC), at most a year; default the last 30 days up to yesterday."""

    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        day_to = data.get("date_to") or utc_yesterday()
        day_from = data.get("date_from") or day_to - dt.timedelta(days=DEFAULT_DAYS - 1)
        if day_from > day_to:
            self.add_error("date_from", "must be on or before the end date")
        elif (day_to - day_from).days + 1 > MAX_DAYS:
            self.add_error("date_from", f"the range may cover at most {MAX_DAYS} days")
        data["date_from"], data["date_to"] = day_from, day_to
        return data


@dataclass(frozen=True)
class Bar:
    label: str
    amount_micros: int
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Chart:
    """Geometry of a server-rendered SVG bar chart (integers only: pixel heights from exact micro-units)."""

    title: str
    description: str
    bars: list[Bar]
    max_micros: int
    width: int
    height: int
    plot_left: int
    plot_top: int
    plot_bottom: int
    unit: str


CHART_WIDTH, CHART_HEIGHT = 720, 220
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 8, 712, 16, 190


def earnings_chart(*, rows: list[dict], day_from: dt.date, day_to: dt.date, currency: str) -> Chart:
    """Bars of the accrued amount per day (per month over long ranges) between the two days, inclusive."""
    days = (day_to - day_from).days + 1
    per_day = {r["period__day"]: r["amount_micros"] for r in rows}
    if days <= DAILY_BARS_MAX:
        unit = "day"
        buckets = [(d.isoformat(), per_day.get(d, 0)) for d in (day_from + dt.timedelta(n) for n in range(days))]
    else:
        unit = "month"
        months: dict[str, int] = {}
        for n in range(days):
            d = day_from + dt.timedelta(n)
            months[d.strftime("%Y-%m")] = months.get(d.strftime("%Y-%m"), 0) + per_day.get(d, 0)
        buckets = list(months.items())
    top = max([amount for _, amount in buckets] + [0])
    plot_w, plot_h = PLOT_RIGHT - PLOT_LEFT, PLOT_BOTTOM - PLOT_TOP
    slot = plot_w // len(buckets)
    width = max(1, slot - (2 if slot > 4 else 0))
    bars = []
    for i, (label, amount) in enumerate(buckets):
        # A net negative day (a correction) draws no bar; the table beside the chart shows its figure.
        height = max(amount, 0) * plot_h // top if top > 0 else 0
        bars.append(Bar(label=label, amount_micros=amount, x=PLOT_LEFT + i * slot, y=PLOT_BOTTOM - height,
                        width=width, height=height))
    total = sum(amount for _, amount in buckets)
    best = max(buckets, key=lambda b: (b[1], b[0])) if buckets else ("", 0)
    earning = sum(1 for _, amount in buckets if amount > 0)
    description = (
        f"{len(buckets)} bars, one per {unit}, from {day_from} to {day_to}. {earning} of them earned royalties; "
        f"the total is {_plain(total)} {currency}"
        + (f", the highest {_plain(best[1])} {currency} on {best[0]}." if best[1] > 0 else ".")
    )
    return Chart(title=f"Royalties earned per {unit}, {day_from} to {day_to} ({currency})", description=description,
                 bars=bars, max_micros=top, width=CHART_WIDTH, height=CHART_HEIGHT, plot_left=PLOT_LEFT,
                 plot_top=PLOT_TOP, plot_bottom=PLOT_BOTTOM, unit=unit)


def _plain(micros: int) -> str:
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    return f"{sign}{whole:,}.{frac:06d}"


def text_segments(text: str, spans: list[dict] | None) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, copied) by the copy spans, so the template can mark copied passages."""
    ranges = sorted(
        (max(0, int(s["generation_span"][0])), min(len(text), int(s["generation_span"][1])))
        for s in (spans or []) if s.get("kind") == "text"
    )
    out: list[tuple[str, bool]] = []
    pos = 0
    for start, end in ranges:
        if end <= pos:
            continue
        start = max(start, pos)
        if start > pos:
            out.append((text[pos:start], False))
        out.append((text[start:end], True))
        pos = end
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def _range(request: HttpRequest) -> tuple[EarningsRangeForm, dt.date | None, dt.date | None]:
    form = EarningsRangeForm(request.GET or {})
    if not form.is_valid():
        return form, None, None
    return form, form.cleaned_data["date_from"], form.cleaned_data["date_to"]


@contributor_required
def earnings(request: HttpRequest) -> HttpResponse:
    contributor = request.contributor
    currency = settings.ROYALTIES_CURRENCY
    form, day_from, day_to = _range(request)
    context: dict = {
        "form": form, "currency": currency,
        "balance_micros": contributor_payable_balance(contributor=contributor, currency=currency),
        "held_micros": contributor_held_balance(contributor=contributor, currency=currency),
    }
    if day_from is None or day_to is None:
        return render(request, "attribution/earnings.html", context, status=400)
    by_period = accrual_totals_by_period(contributor=contributor, period_from=day_from, period_to=day_to)
    by_work = accrual_totals_by_work(contributor=contributor, period_from=day_from, period_to=day_to)
    titles = dict(work_titles(work_ids=[r["work_id"] for r in by_work]))
    for row in by_work:
        row["title"] = titles.get(row["work_id"], f"Work {row['work_id']}")
    by_work.sort(key=lambda r: (-r["amount_micros"], r["work_id"]))
    context.update({
        "day_from": day_from, "day_to": day_to, "by_period": by_period, "by_work": by_work,
        "total_micros": sum(r["amount_micros"] for r in by_period),
        "total_generations": sum(r["generation_count"] for r in by_period),
        "chart": earnings_chart(rows=by_period, day_from=day_from, day_to=day_to, currency=currency),
    })
    return render(request, "attribution/earnings.html", context)


def work_titles(*, work_ids: list[int]) -> list[tuple[int, str]]:
    from contributors.models import Work

    return list(Work.objects.filter(pk__in=work_ids).values_list("pk", "title"))


@contributor_required
def earnings_work(request: HttpRequest, work_id: int) -> HttpResponse:
    contributor = request.contributor
    work = work_get_for_contributor(contributor=contributor, work_id=work_id)
    if work is None:
        raise Http404("No such work.")
    form, day_from, day_to = _range(request)
    context: dict = {"work": work, "form": form, "currency": settings.ROYALTIES_CURRENCY,
                     "inline_image": work.mime_type in INLINE_IMAGE_TYPES and bool(work.file),
                     "text_preview": work.text_body[:5000] if work.text_body else ""}
    if day_from is None or day_to is None:
        return render(request, "attribution/earnings_work.html", context, status=400)
    accruals = list(accrual_list(contributor=contributor, period_from=day_from, period_to=day_to, work=work))
    per_day: dict[dt.date, dict] = {}
    for row in accruals:
        agg = per_day.setdefault(row.period.day, {"day": row.period.day, "amount_micros": 0, "baseline_micros": 0,
                                                  "attributed_micros": 0, "generation_count": 0})
        for key in ("amount_micros", "baseline_micros", "attributed_micros", "generation_count"):
            agg[key] += getattr(row, key)
    top = selectors.work_top_generations(contributor=contributor, work_id=work.pk, day_from=day_from,
                                         day_to=day_to, limit=TOP_GENERATIONS)
    items = []
    for attribution in top:
        generation = attribution.generation
        slot = getattr(generation, "nightly", None)
        items.append({
            "attribution": attribution, "generation": generation,
            "segments": text_segments(generation.output_text, attribution.copy_spans),
            "is_image": bool(generation.output_media) and generation.output_mime_type in INLINE_IMAGE_TYPES,
            "late": bool(slot and slot.late), "generated_day": generation.generated_at.astimezone(dt.UTC).date(),
            "share_percent": attribution.settled.share * 100,
        })
    context.update({
        "day_from": day_from, "day_to": day_to, "my_bps": work.my_bps, "my_percent": work.my_bps / 100,
        "days": sorted(per_day.values(), key=lambda r: r["day"]),
        "total_micros": sum(r.amount_micros for r in accruals),
        "baseline_micros": sum(r.baseline_micros for r in accruals),
        "attributed_micros": sum(r.attributed_micros for r in accruals),
        "items": items,
        "copies": selectors.work_copy_count(contributor=contributor, work_id=work.pk, day_from=day_from,
                                            day_to=day_to),
    })
    return render(request, "attribution/earnings_work.html", context)


@contributor_required
def generation_media(request: HttpRequest, generation_id: int) -> HttpResponse:
    """A generated image, to contributors whose works it drew on only (the media folder is not public)."""
    generation = selectors.generation_visible_to_contributor(contributor=request.contributor,
                                                             generation_id=generation_id)
    if generation is None or not generation.output_media:
        raise Http404("No such generation.")
    inline = generation.output_mime_type in INLINE_IMAGE_TYPES
    try:
        handle = generation.output_media.open("rb")
    except FileNotFoundError as exc:
        raise Http404("The generation's file is no longer stored.") from exc
    response = FileResponse(handle, content_type=generation.output_mime_type or "application/octet-stream",
                            as_attachment=not inline, filename=generation.output_media.name.rsplit("/", 1)[-1])
    # A model's output must never run as a page of this site.
    response["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    response["X-Content-Type-Options"] = "nosniff"
    return response
