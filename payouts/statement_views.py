"""A contributor's statements (mounted at /portal/statements/): their own only; anyone else's is a 404."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.roles import CONTRIBUTOR, role_required
from contributors.models import Contributor
from payouts.finance_views import statement_response
from payouts.models import Statement
from payouts.selectors import statement_list


def _own_contributor(request: HttpRequest) -> Contributor:
    contributor = Contributor.objects.filter(user_id=request.user.pk).first()
    if contributor is None:
        raise Http404
    return contributor


@require_GET
@login_required
@role_required(CONTRIBUTOR)
def statement_list_view(request: HttpRequest) -> HttpResponse:
    contributor = _own_contributor(request)
    page = Paginator(statement_list(contributor=contributor), 24).get_page(request.GET.get("page"))
    return render(request, "payouts/statement_list.html", {"page_obj": page, "statements": page.object_list,
                                                           "contributor": contributor})


@require_GET
@login_required
@role_required(CONTRIBUTOR)
def statement_download(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    contributor = _own_contributor(request)
    # Only the contributor's own: someone else's statement answers exactly like one that does not exist.
    if not Statement.objects.filter(pk=pk, contributor=contributor).exists():
        raise Http404
    return statement_response(request, pk, fmt)
