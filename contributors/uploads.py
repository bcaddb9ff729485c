"""Stop reading an upload as soon as it passes the work size limit, instead of spooling all of it to disk.

Django writes large uploads to temporary files before a view sees them, so without this a 10 GB upload
would fill the temp folder before being refused. The handler stops storing the file at the limit and
marks the request; the view then answers with the same message as any oversized work.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from contributors.services.content import max_upload_bytes


class WorkSizeLimitUploadHandler(FileUploadHandler):
    """Refuses the rest of a file once it passes ROYALTIES_MAX_UPLOAD_BYTES; sets ``request.upload_too_large``."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        received = start + len(raw_data)
        if received > max_upload_bytes():
            self.request.upload_too_large = received
            # Not a connection reset: the browser still gets a page that says what went wrong.
            raise StopUpload(connection_reset=False)
        return raw_data  # the next handlers (memory or temporary file) store it as usual

    def file_complete(self, file_size: int) -> None:
        return None


def limit_upload_size(view: Callable) -> Callable:
    """Install the handler before anything reads the body. CSRF is checked after it (the CSRF middleware
    would otherwise read the body first, with the default handlers), as Django's upload docs describe."""
    protected = csrf_protect(view)

    @csrf_exempt
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        request.upload_too_large = 0
        request.upload_handlers.insert(0, WorkSizeLimitUploadHandler(request))
        return protected(request, *args, **kwargs)

    return wrapped
