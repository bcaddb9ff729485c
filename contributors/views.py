"""The contributor portal: dashboard, works, work detail, add/edit with upload, opt-outs, profile.

Every work page looks the work up among the signed-in contributor's own works, so another person's work
answers 404 exactly like a work that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import CONTRIBUTOR, role_required, user_has_role
from audit.selectors import audit_event_list_for_many
from contributors import selectors
from contributors.downloads import INLINE_IMAGE_TYPES, work_content_response
from contributors.forms import OptOutForm, ProfileForm, WorkFilterForm, WorkForm, form_errors_from
from contributors.models import Work
from contributors.services import (
    content_from_text,
    content_from_upload,
    contributor_ensure,
    contributor_update,
    work_create,
    work_opt_out,
    work_opt_out_withdraw,
    work_update,
)
from contributors.services.content import content_too_large
from contributors.uploads import limit_upload_size

WORKS_PER_PAGE = 20


def contributor_required(view: Callable) -> Callable:
    """Signed in (else the login page) and a contributor (else 404); sets ``request.contributor``."""

    @login_required
    @role_required(CONTRIBUTOR)
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        request.contributor = contributor_ensure(user=request.user)
        return view(request, *args, **kwargs)

    return wrapped


def _own_work(request: HttpRequest, pk: int) -> Work:
    work = selectors.work_get_for_contributor(contributor=request.contributor, work_id=pk)
    if work is None:
        raise Http404("No such work.")
    return work


@contributor_required
def dashboard(request: HttpRequest) -> HttpResponse:
    contributor = request.contributor
    recent = selectors.work_list_for_contributor(contributor=contributor)[:5]
    return render(
        request,
        "contributors/dashboard.html",
        {"contributor": contributor, "summary": selectors.contributor_work_summary(contributor=contributor),
         "recent_works": recent, **_money_at_a_glance(contributor)},
    )


def _money_at_a_glance(contributor) -> dict:
    """What is owed now (the ledger's payable balance) and the last 30 days of accruals as the earnings chart.

    The chart is drawn by the earnings pages' own function, so the dashboard and /portal/earnings/ always agree.
    """
    import datetime as dt

    from django.conf import settings

    from attribution.portal_views import DEFAULT_DAYS, earnings_chart, utc_yesterday
    from royalties.ledger.selectors import accrual_totals_by_period, contributor_payable_balance

    currency = settings.ROYALTIES_CURRENCY
    day_to = utc_yesterday()
    day_from = day_to - dt.timedelta(days=DEFAULT_DAYS - 1)
    rows = accrual_totals_by_period(contributor=contributor, period_from=day_from, period_to=day_to)
    return {
        "currency": currency,
        "balance_micros": contributor_payable_balance(contributor=contributor, currency=currency),
        "earned_micros": sum(r["amount_micros"] for r in rows),
        "chart": earnings_chart(rows=rows, day_from=day_from, day_to=day_to, currency=currency),
    }


@contributor_required
def work_list(request: HttpRequest) -> HttpResponse:
    filters = WorkFilterForm(request.GET or None)
    cleaned = filters.cleaned_data if filters.is_valid() else {}
    works = selectors.work_list_for_contributor(
        contributor=request.contributor,
        q=(cleaned.get("q") or "").strip(),
        kind=cleaned.get("kind") or "",
        status=cleaned.get("status") or "",
        opted_out=filters.opted_out_value(),
    )
    page = Paginator(works, WORKS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "contributors/work_list.html",
        {"filters": filters, "page_obj": page, "works": page.object_list, "filtered": any(cleaned.values())},
    )


@contributor_required
@require_http_methods(["GET", "POST"])
@limit_upload_size
def work_add(request: HttpRequest) -> HttpResponse:
    form = WorkForm(request.POST or None, request.FILES or None)
    if request.upload_too_large:
        form.full_clean()
        form.errors.pop("file", None)
        form_errors_from(form, content_too_large("file", None))
    elif request.method == "POST" and form.is_valid():
        try:
            content = (
                content_from_upload(upload=form.cleaned_data["file"])
                if form.cleaned_data.get("file")
                else content_from_text(text=form.cleaned_data["text_body"])
            )
            registration = work_create(
                created_by=request.contributor, title=form.cleaned_data["title"],
                description=form.cleaned_data["description"], content=content, actor=request.user,
            )
        except ValidationError as exc:
            form_errors_from(form, exc)
        else:
            work = registration.work
            messages.success(request, f"“{work.title}” is registered as {work.get_kind_display().lower()}.")
            if registration.dispute is not None:
                messages.warning(
                    request,
                    "Another contributor registered the same content earlier, so both claims are flagged and "
                    f"dispute #{registration.dispute.pk} is open. A catalog admin will decide who owns it.",
                )
            return redirect("contributors:work_detail", pk=work.pk)
    return render(request, "contributors/work_form.html", {"form": form, "editing": False}, status=_status(form))


@contributor_required
def work_detail(request: HttpRequest, pk: int) -> HttpResponse:
    work = _own_work(request, pk)
    disputes = list(selectors.work_dispute_list(work=work))
    history = audit_event_list_for_many(objects=[work, *disputes])[:50]
    return render(
        request,
        "contributors/work_detail.html",
        {
            "work": work,
            "owners": selectors.work_owner_list(work=work),
            "disputes": disputes,
            "opt_outs": selectors.work_opt_out_list(work=work),
            "history": history,
            "opt_out_form": OptOutForm(),
            "inline_image": work.mime_type in INLINE_IMAGE_TYPES and bool(work.file),
            "text_preview": work.text_body[:5000] if work.text_body else "",
        },
    )


@contributor_required
@require_http_methods(["GET", "POST"])
@limit_upload_size
def work_edit(request: HttpRequest, pk: int) -> HttpResponse:
    work = _own_work(request, pk)
    if work.status == Work.Status.REMOVED:
        messages.error(request, "This work was removed from the catalog; it can no longer be edited.")
        return redirect("contributors:work_detail", pk=work.pk)
    initial = {"title": work.title, "description": work.description}
    form = WorkForm(request.POST or None, request.FILES or None, initial=initial, editing=True)
    if request.upload_too_large:
        form.full_clean()
        form_errors_from(form, content_too_large("file", None))
    elif request.method == "POST" and form.is_valid():
        content = None
        try:
            if form.cleaned_data.get("file"):
                content = content_from_upload(upload=form.cleaned_data["file"])
            elif (form.cleaned_data.get("text_body") or "").strip():
                content = content_from_text(text=form.cleaned_data["text_body"])
            registration = work_update(
                work=work, actor=request.user, title=form.cleaned_data["title"],
                description=form.cleaned_data["description"], content=content,
            )
        except ValidationError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, "Your changes are saved.")
            if registration.dispute is not None:
                messages.warning(
                    request,
                    "Another contributor registered this content earlier: dispute "
                    f"#{registration.dispute.pk} is open and a catalog admin will decide.",
                )
            return redirect("contributors:work_detail", pk=work.pk)
    return render(
        request, "contributors/work_form.html", {"form": form, "editing": True, "work": work}, status=_status(form)
    )


@contributor_required
@require_POST
def work_opt_out_view(request: HttpRequest, pk: int) -> HttpResponse:
    work = _own_work(request, pk)
    form = OptOutForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        work_opt_out(work=work, actor=request.user, requested_by=request.contributor, reason=reason)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"“{work.title}” is opted out of future training.")
    return redirect("contributors:work_detail", pk=work.pk)


@contributor_required
@require_POST
def work_opt_out_withdraw_view(request: HttpRequest, pk: int) -> HttpResponse:
    work = _own_work(request, pk)
    try:
        work_opt_out_withdraw(work=work, actor=request.user, requested_by=request.contributor)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"“{work.title}” is available for future training again.")
    return redirect("contributors:work_detail", pk=work.pk)


@contributor_required
def work_content(request: HttpRequest, pk: int) -> HttpResponse:
    """The work's content, to its owners only: the media folder is not served publicly."""
    return work_content_response(work=_own_work(request, pk), inline=request.GET.get("inline") == "1")


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    """Everyone's account page; contributors also edit their names and country here."""
    contributor = contributor_ensure(user=request.user) if user_has_role(request.user, CONTRIBUTOR) else None
    form = None
    if contributor is not None:
        initial = {"display_name": contributor.display_name, "legal_name": contributor.legal_name,
                   "country": contributor.country}
        form = ProfileForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                contributor_update(contributor=contributor, actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                form_errors_from(form, exc)
            else:
                messages.success(request, "Your profile is saved.")
                return redirect("contributors:profile")
    elif request.method == "POST":
        raise Http404
    from allauth.mfa.utils import is_mfa_enabled

    return render(
        request,
        "contributors/profile.html",
        {"contributor": contributor, "form": form, "mfa_enabled": is_mfa_enabled(request.user)},
        status=_status(form) if form is not None else 200,
    )


def _status(form) -> int:
    """Re-rendered forms with errors answer 400, so scripts and tests can tell failure from success."""
    return 400 if form is not None and form.is_bound and form.errors else 200
