"""The CPR number must never reach a log line or an audit row's text, even when a caller puts
one where an id belongs (``/fhir/Patient/0101501234`` is a common client mistake)."""

import logging
import re

# DDMMYY-XXXX or DDMMYYXXXX, not part of a longer number (UUIDs and ids stay readable).
_CPR = re.compile(r"(?<![0-9A-Za-z])(\d{6})-?(\d{4})(?![0-9A-Za-z])")


def redact_cpr(text: str) -> str:
    return _CPR.sub("[cpr]", text)


class RedactCprLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_cpr(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_cpr(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_cpr(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True
