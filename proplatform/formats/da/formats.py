"""Danish dates as Danes write them in lists and tables: "3. dec 2026 13:51" (Django's own
short formats are "03.12.2026"). Everything else is Django's Danish locale."""

from django.conf.locale.da.formats import *  # noqa: F403

SHORT_DATE_FORMAT = "j. b Y"
SHORT_DATETIME_FORMAT = "j. b Y H:i"
