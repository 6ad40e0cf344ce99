"""The CPR number must never reach a log line or an audit row's text, even when a caller puts
one where an id belongs (``/fhir/Patient/0101501234`` is a common client mistake)."""

import logging
import re

# DDMMYY-XXXX, DDMMYY XXXX or DDMMYYXXXX, not part of a longer number (UUIDs and ids stay
# readable). Redacting a number that only looks like a CPR number is the safe mistake.
# Also right after a percent-escape: in a logged query string (an access log line of
# ``Patient?identifier=urn%3Aoid%3A1.2.208.176.1.2%7C0101501111``, FHIR's standard CPR search)
# the number follows "%7C", whose "C" would otherwise look like part of a longer word.
_CPR = re.compile(r"(?:(?<![0-9A-Za-z])|(?<=%[0-9A-Fa-f][0-9A-Fa-f]))(\d{6})[- ]?(\d{4})(?![0-9A-Za-z])")
_TRACEBACKS = logging.Formatter()


def redact_cpr(text: str) -> str:
    return _CPR.sub("[cpr]", text)


def _rendered(record: logging.LogRecord) -> str:
    """The record's message, never raising: logging must not break the code that logs (an
    argument whose str() fails, e.g. a model instance in a broken transaction)."""
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001
        parts = []
        for part in (record.msg, *(record.args if isinstance(record.args, tuple) else (record.args,))):
            try:
                parts.append(str(part))
            except Exception:  # noqa: BLE001
                parts.append(f"<{type(part).__name__}>")
        return " ".join(parts)


class RedactCprLogFilter(logging.Filter):
    """Redacts the whole rendered line: the message with its arguments whatever their type (an
    exception, a dict, a model instance), the traceback (a database error can quote a row's
    values) and the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact_cpr(_rendered(record)), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_cpr(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_cpr(record.stack_info)
        return True
