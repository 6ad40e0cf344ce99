"""Shared REST error shape: DRF's field-level messages, plus a request id to quote to support."""

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from proplatform.middleware import current_request_id


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(response.data, list):
        response.data = {"non_field_errors": response.data}
    response.data["request_id"] = current_request_id()
    return response
