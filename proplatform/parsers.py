"""The JSON parser of every REST and FHIR endpoint (issue 20): DRF's, refusing with a 400
instead of a 500 what it would otherwise hand on — JSON nested deeper than Python's recursion
limit (orjson refuses ≥ 1,024 levels itself; the standard library's decoder recursed until it
failed), and text PostgreSQL cannot store (NUL, half a surrogate pair), named by its path."""

import io
from collections.abc import Mapping
from typing import IO, Any

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from proplatform.input import json_suspect, unstorable_path


class UnstorableText(ParseError):
    """A string in the body that the database cannot hold; ``path`` names it (``identifier.value``)
    and ``resource_type`` is the body's FHIR resourceType, if it has one."""

    def __init__(self, path: str, resource_type: str | None = None) -> None:
        super().__init__(_("%(path)s contains the NUL character or half a character (a lone surrogate), "
                           "which cannot be stored.") % {"path": path or _("The body")})
        self.path, self.resource_type = path, resource_type


def unstorable_check(data: Any, body: bytes) -> None:
    """Raise UnstorableText if the JSON ``body`` (decoded as ``data``) holds text the database
    cannot store. Costs a byte scan unless the body contains such an escape."""
    if json_suspect(body) and (path := unstorable_path(data)) is not None:
        kind = data.get("resourceType") if isinstance(data, dict) else None
        raise UnstorableText(path, kind if isinstance(kind, str) else None)


class JSONParser(parsers.JSONParser):
    def parse(self, stream: IO[Any] | None, media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        body = stream.read() if stream is not None else b""
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise ParseError(_("JSON parse error - the body is nested too deeply.")) from None
        unstorable_check(data, body)
        return data
