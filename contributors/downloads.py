"""Serving a work's content: only through views that checked who is asking, never as a page of the site."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpResponse

from contributors.models import Work

# Raster images may be shown inline (the work page's preview); everything else, SVG included (it can
# carry script), is only ever downloaded.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"})


def work_content_response(*, work: Work, inline: bool = False) -> HttpResponse:
    if work.file:
        response: HttpResponse = FileResponse(
            work.file.open("rb"), content_type=work.mime_type,
            as_attachment=not (inline and work.mime_type in INLINE_IMAGE_TYPES),
            filename=work.file.name.rsplit("/", 1)[-1],
        )
    elif work.text_body:
        response = HttpResponse(work.text_body, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="work-{work.pk}.txt"'
    else:
        raise Http404("This work has no stored content.")
    # Even an owner's own upload must never run as a page of this site.
    response["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    return response
