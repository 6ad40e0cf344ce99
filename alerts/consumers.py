import asyncio
import logging
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db.models import Exists

from accounts.middleware import session_idle_expired, session_passed_two_factor
from accounts.models import Role, User
from alerts.live import team_group
from alerts.selectors import WorklistFilter, alert_payload, alerts_filtered, worklist, worklist_filter_parse
from alerts.transports.websocket import user_group
from audit.models import Action
from audit.services import audit_record, audit_record_many
from patients.access import teams_for

log = logging.getLogger(__name__)


class AlertConsumer(AsyncJsonWebsocketConsumer):
    """/ws/alerts/: the live triage feed of the connected clinician's teams.

    On connect it sends a snapshot of the worklist from the database, then every change as it
    happens. The socket joins its teams' groups at connect, but every pushed alert is checked
    against the clinician's access at that moment: someone taken off a team (or deactivated)
    while the page is open gets ``removed`` for that team's alerts, never their contents.

    The query string carries the page's filters (``?team=&program=&severity=&mine=1``, parsed
    by the same function as the page). With a filter, each pushed change is checked against it
    with the page's own selector: a match is sent as ``alert``, anything else as ``removed`` (an
    alert re-assigned away from "mine" must leave that list, and a non-matching alert must not
    show up in it)."""

    groups_joined: list[str]
    worklist_filter: WorklistFilter
    _push_queue: list[dict[str, Any]]
    _drain: asyncio.Task[None] | None = None
    _heartbeat: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.groups_joined = []
        self._push_queue = []
        if user is None or not user.is_authenticated or user.role not in {Role.CLINICIAN, Role.ADMIN}:
            await self.close(code=4403)
            return
        # The HTTP pages send an unverified staff session to two-factor enrolment
        # (accounts.middleware); the socket bypasses that middleware, so it asks the same question.
        session = self.scope.get("session")
        if await database_sync_to_async(session_idle_expired)(session):
            await self.close(code=4401)  # the page reloads and the login page takes it from there
            return
        if not await database_sync_to_async(session_passed_two_factor)(user, session):
            await self.close(code=4403)
            return
        await self.accept()
        team_ids, snapshot = await self._load(user)
        for team_id in team_ids:
            group = team_group(team_id)
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        # Personal notices (alerts.transports.websocket), e.g. an escalation naming this person.
        personal = user_group(user.pk)
        await self.channel_layer.group_add(personal, self.channel_name)
        self.groups_joined.append(personal)
        await self.send_json({"type": "snapshot", "alerts": snapshot})
        self._heartbeat = asyncio.create_task(self._beat(settings.LIVE_HEARTBEAT_SECONDS))

    async def _beat(self, every: float) -> None:
        """An application-level heartbeat: the page reconnects when it hears nothing for a while,
        so a feed that died without a close frame (a dropped network, a killed process) is noticed
        instead of looking live and quiet."""
        while True:
            await asyncio.sleep(every)
            if not await self._session_still_good():
                # Logged out, the password changed, or idle too long: the page reloads and the
                # login page takes over, as it does for every other page.
                await self.close(code=4401)
                return
            await self.send_json({"type": "heartbeat"})

    @database_sync_to_async
    def _session_still_good(self) -> bool:
        key = getattr(self.scope.get("session"), "session_key", None)
        if key is None:
            return True  # no session to end (a test's scope); access is re-checked on every push
        store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
        return store.exists(key) and not session_idle_expired(store)

    @database_sync_to_async
    def _load(self, user: User) -> tuple[list[int], list[dict[str, Any]]]:
        client = self.scope.get("client") or (None, None)
        query = parse_qs((self.scope.get("query_string") or b"").decode("latin-1"))
        self.worklist_filter = worklist_filter_parse(query, user)
        audit_record(user=user, action=Action.SEARCH, resource="Alert?worklist (websocket)",
                     ip=client[0])
        team_ids = list(teams_for(user).values_list("id", flat=True))
        alerts = list(worklist(user, self.worklist_filter))
        # The snapshot shows these patients: each a read, as on the page (alerts.views.triage).
        shown = dict.fromkeys(a.patient_id for a in alerts)
        audit_record_many(user=user, action=Action.READ, ip=client[0],
                          reads=[("Alert?worklist (websocket)", pk) for pk in shown])
        return team_ids, [alert_payload(a) for a in alerts]

    async def disconnect(self, code: int) -> None:
        for task in (self._drain, self._heartbeat):
            if task is not None:
                task.cancel()
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # Changes go through the REST API (CSRF, audit, one code path); the socket only listens.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def alerts_changed(self, event: dict[str, Any]) -> None:
        # Queued, and sent by one drain task per connection: while it writes the audit rows of
        # the alerts it holds, the next ones collect behind it and go together (one query and
        # one INSERT however many). One at a time, a burst of pushes (a reading every 10 ms)
        # queued behind a database round trip each.
        self._push_queue.extend(event["alerts"])
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._send_queued())

    async def _send_queued(self) -> None:
        while self._push_queue:
            alerts, self._push_queue = self._push_queue, []
            try:
                shown = await self._matching_and_audited(alerts)
            except Exception:
                # Nothing unaudited is shown. Closing makes the page reconnect, and a reconnect
                # reloads the worklist from the database, so these alerts are not missed.
                log.exception("live push to %s failed; closing the socket", self.channel_name)
                await self.close(code=1011)
                return
            for alert in alerts:
                if alert["id"] in shown:
                    await self.send_json({"type": "alert", "alert": alert})
                else:
                    await self.send_json({"type": "removed", "id": alert["id"]})

    async def notify(self, event: dict[str, Any]) -> None:
        # No patient in a notice (team, alert id, link): nothing to audit until the page is opened.
        await self.send_json({"type": "notify", "notification": event["notification"]})

    @database_sync_to_async
    def _matching_and_audited(self, alerts: list[dict[str, Any]]) -> set[int]:
        """The ids of the alerts this page shows (the clinician's access now, and its filter),
        each audited as read: a push shows a person a patient's name and the reason, a read like
        any other."""
        user = self.scope["user"]
        f = getattr(self, "worklist_filter", None)
        # The access of now (current team membership; still active), not of when the socket
        # connected. One query with the page's filter.
        ids = set(alerts_filtered(user, f if f is not None and f.active else None)
                  .filter(Exists(User.objects.filter(pk=user.pk, is_active=True)),
                          pk__in={a["id"] for a in alerts})
                  .values_list("pk", flat=True))
        client = self.scope.get("client") or (None, None)
        audit_record_many(user=user, action=Action.READ, ip=client[0], reads=[
            (f"Alert/{a['id']} (live push)", a["patient"]["id"]) for a in alerts if a["id"] in ids])
        return ids
