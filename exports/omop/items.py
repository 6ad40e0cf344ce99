"""The questionnaires' items and the answer codes as concept maps for the observation insert
(exports.omop.export): small JSON maps PostgreSQL looks up in the one INSERT … SELECT, so that
no row of the big tables passes through Python."""

import json
from typing import Any

from django.db import connection

from exports.omop import concepts
from exports.omop.schema import OmopError
from questionnaires.models import Questionnaire, QuestionnaireResponse

LOINC = "http://loinc.org"


def item_map() -> str:
    """The questionnaires' items as a JSON map for the observation insert: per questionnaire id,
    per linkId, [source value, concept id, place in the definition order]; under "" the
    response's own row: [the panel code, else the questionnaire's name; its concept id; 0]."""
    response = QuestionnaireResponse._meta.db_table
    out: dict[str, dict[str, list[Any]]] = {}
    with connection.cursor() as c:
        c.execute(f"SELECT q.id, q.resource, q.resource->>'name' FROM {Questionnaire._meta.db_table} q "
                  f"WHERE q.id IN (SELECT DISTINCT questionnaire_id FROM {response}) ORDER BY q.id")
        for pk, resource, name in c.fetchall():
            if isinstance(resource, str):
                resource = json.loads(resource)
            items: dict[str, list[Any]] = {}
            for seq, (link_id, code) in enumerate(_items(resource)):
                if link_id in items:
                    raise OmopError(f"Questionnaire {pk} uses the linkId {link_id!r} twice.")
                source = (code or "")[:50] or (name if link_id == "" else link_id)
                items[link_id] = [source, concepts.concept_id("LOINC", code), seq]
            out[str(pk)] = items
    return json.dumps(out)


def code_map() -> str:
    """The LOINC codes of the concept table (answers, scores) with their concept ids, as JSON."""
    return json.dumps({c.code: c.concept_id for c in concepts.concepts() if c.code_system == "LOINC"})


def _items(resource: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(linkId, LOINC code) of the questionnaire in definition order; first ('', panel code):
    the code of the questionnaire or of its first coded group names the whole response."""
    out: list[tuple[str, str | None]] = []
    panel: list[str | None] = [_loinc(resource.get("code"))]

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            code = _loinc(item.get("code"))
            if item.get("type") == "group":
                if panel[0] is None:
                    panel[0] = code
            elif item.get("type") != "display":
                out.append((item["linkId"], code))
            walk(item.get("item", []))

    walk(resource.get("item", []))
    return [("", panel[0]), *out]


def _loinc(codes: Any) -> str | None:
    for c in codes or []:
        if c.get("system") == LOINC and c.get("code"):
            return str(c["code"])
    return None
