"""Input every path shares: how a number written as text is read, and which text the database
cannot hold (issue 20).

One parser for numbers on every path (REST strings, the web forms): ASCII digits with one
decimal separator. Python's own ``Decimal("…")``/``int("…")`` accept far more than a person or
a device means — full-width digits ("６０"), Arabic-Indic digits, "1_0_0" (Python source's
digit grouping), exponents ("1e999999999", which overflowed the range check), "NaN" — and each
path took a different subset of them.

PostgreSQL's text and jsonb cannot hold the NUL character, and UTF-8 cannot carry half of a
surrogate pair (JSON's "\\ud800" escape decodes to one): either reached a query as a 500, or
failed the audit row written for the refusal."""

import re
from decimal import Decimal
from typing import Any

# Digits are [0-9], not \d: \d matches every script's digits ("６０" would be 60).
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)


def parse_decimal(text: str, *, decimal_comma: bool = False) -> Decimal | None:
    """The number ``text`` writes, or None: ASCII digits, an optional sign and at most one
    decimal separator — a point, or (``decimal_comma``: the web forms, as Danish writes it) a
    comma. Surrounding white space is ignored; digit grouping, exponents and other scripts'
    digits are not numbers here."""
    text = text.strip()
    if decimal_comma and "," in text:
        if "." in text:
            return None  # "1.000,5": grouping, or a typo; neither is read as a guess
        text = text.replace(",", ".")
    if not _NUMBER.fullmatch(text):
        return None
    return Decimal(text)


def parse_integer(text: str) -> int | None:
    """The whole number ``text`` writes (ASCII digits, optional sign), or None."""
    text = text.strip()
    return int(text) if _INTEGER.fullmatch(text) else None


def storable(text: str) -> bool:
    """Whether PostgreSQL can store ``text``: no NUL character and no half of a surrogate pair."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def storable_text(text: str) -> str:
    """``text`` with NUL and lone surrogates written as escapes, for an audit row or a log line
    that records what a caller sent (the refusal must be recorded too)."""
    if storable(text):
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode()


def unstorable_path(data: Any, path: str = "") -> str | None:
    """The path (``identifier.value``, ``item[0].answer[1].valueString``) of the first string
    in decoded JSON ``data`` — a key or a value — that PostgreSQL cannot store, or None."""
    stack: list[tuple[Any, str]] = [(data, path)]
    while stack:  # a loop, not recursion: the data may be nested as deep as the parser allows
        value, where = stack.pop()
        if isinstance(value, str):
            if not storable(value):
                return where
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                name = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and not storable(key):
                    return storable_text(name)
                stack.append((item, name))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]") for i, item in reversed(list(enumerate(value))))
    return None


# JSON text that decodes to something unstorable: the escape of NUL, or of a surrogate (which
# may be half a pair; unstorable_path tells). A raw NUL is invalid JSON anyway.
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def json_suspect(body: bytes) -> bool:
    """Whether a JSON body may decode to text PostgreSQL cannot store: only then is the decoded
    value walked (a scan of the bytes costs microseconds; most bodies contain no ``\\u`` at all)."""
    return b"\\u" in body and _SUSPECT.search(body) is not None
