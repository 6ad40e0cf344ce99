"""Lift a failed-login lock before its cool-off, with an audit row saying who was unlocked.

axes' own ``axes_reset_username`` does the same without the audit row."""

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.core.management.base import BaseCommand, CommandParser

from audit.models import Action
from audit.services import audit_record


class Command(BaseCommand):
    help = "Unlock usernames locked after failed logins (django-axes), and audit it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("usernames", nargs="+")

    def handle(self, *args: Any, usernames: list[str], **options: Any) -> None:
        for username in usernames:
            count = AxesProxyHandler.reset_attempts(username=username)
            audit_record(user=None, action=Action.UPDATE,
                         resource=f"login unlocked username={username[:100]} (manage.py login_unlock)")
            self.stdout.write(f"{username}: unlocked ({count} failure record(s) removed)")
