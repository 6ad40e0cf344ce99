"""Shared REST error shape: DRF's field-level messages, plus a request id to quote to support."""

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from proplatform.middleware import current_request_id
from proplatform.parsers import UnstorableText


class BodyTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "too_large"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):  # Django's limit: answered as an API error, not an HTML 400
        exc = BodyTooLarge(f"The body is larger than this server accepts "
                           f"({settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes).")
    elif isinstance(exc, UnstorableText) and exc.path:  # field-level, as the other 400s
        exc = exceptions.ValidationError({exc.path: [str(exc.detail)]})
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(response.data, list):
        response.data = {"non_field_errors": response.data}
    response.data["request_id"] = current_request_id()
    return response
