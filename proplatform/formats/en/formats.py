"""English dates in lists and tables: "3 Dec 2026 13:51". Everything else is Django's English locale."""

from django.conf.locale.en.formats import *  # noqa: F403

SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y H:i"
