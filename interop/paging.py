"""Keyset paging of FHIR searches, and the searchset Bundle with its links.

A page is "the ``_count`` rows after (or before) this position in the sort order", where the
position is the last row's sort key and id. Unlike an offset, a position stays right while
readings arrive: a new reading lands before or after it, and no row is shown twice or skipped.
Every sort order ends with the id, so the order is total and the position exact.

The position travels in ``_cursor``: signed (django.core.signing, with the search it belongs to),
so a changed or forged cursor is refused (400). It holds only sort values of rows the caller was
shown, never a filter: the caller's scope is applied again on every page, so a cursor cannot
widen it.
"""

import hashlib
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.core import signing
from django.db.models import Q, QuerySet

from interop.search import Search, bad

_SALT = "interop.paging.cursor"
# Parameters that may change from page to page without making the cursor another search's.
_PAGE_ONLY = {"_count", "_total", "_summary", "_include", "_cursor"}

Key = list[Any]


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    return value


def fingerprint(search: Search) -> str:
    """Which search a cursor belongs to: its filters and sort order."""
    kept = sorted((n, v) for n, v in search.link_params if n.partition(":")[0] not in _PAGE_ONLY)
    return hashlib.sha256(repr((search.resource_type, kept, search.sort)).encode()).hexdigest()[:16]


def cursor_encode(search: Search, key: Key, direction: str) -> str:
    return signing.dumps({"k": [jsonable(v) for v in key], "d": direction, "f": fingerprint(search)},
                         salt=_SALT, compress=True)


def cursor_decode(search: Search) -> tuple[Key, str] | None:
    if search.cursor is None:
        return None
    try:
        data = signing.loads(search.cursor, salt=_SALT)
    except (signing.BadSignature, ValueError, UnicodeDecodeError):
        raise bad("_cursor", "not a cursor this server issued (changed or damaged); "
                             "start again from the first page.") from None
    if data.get("f") != fingerprint(search):
        raise bad("_cursor", "the cursor belongs to another search; page with the links of its own Bundle.")
    return data["k"], data["d"]


def after_q(order: Sequence[tuple[str, bool]], key: Key) -> Q:
    """Rows strictly after ``key`` in ``order`` ((field, descending) pairs, ending with the id).

    Written as ``first <= v1 AND (first < v1 OR (first = v1 AND ...))``: the leading range
    condition lets PostgreSQL start the index scan at the position instead of filtering."""
    (first, first_desc), v1 = order[0], key[0]
    bound = Q(**{f"{first}__{'lte' if first_desc else 'gte'}": v1})
    alternatives = Q(pk__in=[])
    for i, (field_, desc) in enumerate(order):
        equal = {order[j][0]: key[j] for j in range(i)}
        alternatives |= Q(**equal, **{f"{field_}__{'lt' if desc else 'gt'}": key[i]})
    return bound & alternatives


def reverse(order: Sequence[tuple[str, bool]]) -> list[tuple[str, bool]]:
    return [(f, not d) for f, d in order]


def order_by(order: Sequence[tuple[str, bool]]) -> list[str]:
    return [("-" if desc else "") + f for f, desc in order]


class Page:
    """One page of rows, and the keys to the pages beside it (None: no such page)."""

    def __init__(self, rows: list[Any], next_key: Key | None, previous_key: Key | None) -> None:
        self.rows, self.next_key, self.previous_key = rows, next_key, previous_key


def page_queryset(qs: QuerySet[Any], order: Sequence[tuple[str, bool]], search: Search,
                  key_of: Callable[[Any], Key]) -> Page:
    """The page of ``qs`` the search's cursor points at (the first page without one)."""
    cursor = cursor_decode(search)
    count = search.count
    if cursor is None:
        rows = list(qs.order_by(*order_by(order))[:count + 1])
        more = len(rows) > count
        rows = rows[:count]
        return Page(rows, key_of(rows[-1]) if more else None, None)
    key, direction = cursor
    _check_key(key, order)
    if direction == "next":
        rows = list(qs.filter(after_q(order, key)).order_by(*order_by(order))[:count + 1])
        more = len(rows) > count
        rows = rows[:count]
        return Page(rows, key_of(rows[-1]) if more and rows else None, key_of(rows[0]) if rows else key)
    back = reverse(order)
    rows = list(qs.filter(after_q(back, key)).order_by(*order_by(back))[:count + 1])
    more = len(rows) > count
    rows = rows[:count][::-1]
    return Page(rows, key_of(rows[-1]) if rows else key, key_of(rows[0]) if more and rows else None)


def _check_key(key: Any, order: Sequence[Any]) -> None:
    if not isinstance(key, list) or len(key) != len(order):
        raise bad("_cursor", "not a cursor of this search.")


def _link(base_url: str, search: Search, extra: list[tuple[str, str]]) -> str:
    params = [(n, v) for n, v in search.link_params if n != "_count"] + [("_count", str(search.count)), *extra]
    return f"{base_url}/{search.resource_type}?{urlencode(params)}"


def searchset_bundle(*, base_url: str, search: Search, resources: list[dict[str, Any]],
                     included: Sequence[dict[str, Any]] = (), total: int | None, page: Page | None,
                     issues: Sequence[dict[str, Any]] = (), self_link: bool = True) -> dict[str, Any]:
    """The searchset Bundle: matches, included resources, an OperationOutcome entry for what was
    ignored or adjusted, and self/next/previous links (the current cursor on self)."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    links = []
    if self_link:
        current = [("_cursor", search.cursor)] if search.cursor else []
        links.append({"relation": "self", "url": _link(base_url, search, current)})
    if page is not None and page.next_key is not None:
        links.append({"relation": "next", "url": _link(
            base_url, search, [("_cursor", cursor_encode(search, page.next_key, "next"))])})
    if page is not None and page.previous_key is not None:
        links.append({"relation": "previous", "url": _link(
            base_url, search, [("_cursor", cursor_encode(search, page.previous_key, "previous"))])})
    if links:
        bundle["link"] = links
    entries = [{"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
               for r in resources]
    entries += [{"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r,
                 "search": {"mode": "include"}} for r in included]
    all_issues = [*search.issues, *issues]
    if all_issues:
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}",
                        "resource": {"resourceType": "OperationOutcome", "issue": all_issues},
                        "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return bundle
