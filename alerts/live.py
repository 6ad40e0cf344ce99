"""Live updates of alerts over Channels. A hint only: the triage page reloads the worklist from
the database on every (re)connect, so a message lost here never hides an alert."""

import logging
from typing import Any

from channels.layers import get_channel_layer
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

from alerts.models import Alert, AlertFinding
from alerts.selectors import alert_payload
from patients.models import TreatmentEpisode
from proplatform import channel_sends

log = logging.getLogger(__name__)


def team_group(team_id: int) -> str:
    return f"alerts.team.{team_id}"


def alert_broadcast(alert_id: int) -> None:
    """Send the alert's current state to every triage page of its patient's teams."""
    alerts_broadcast([alert_id])


def alerts_broadcast(alert_ids: list[int]) -> None:
    """Push alerts' current state to their patients' teams: two queries however many alerts,
    one channel-layer message per team."""
    layer = get_channel_layer()
    if layer is None or not alert_ids:
        return
    # The count as a correlated subquery on the findings' own index: a Count() annotation would
    # GROUP BY every joined column, a separate query would cost a round trip.
    counted = (AlertFinding.objects.filter(alert=OuterRef("pk")).order_by().values("alert")
               .annotate(n=Count("id")).values("n"))
    alerts = list(Alert.objects.select_related("patient", "rule__program", "acknowledged_by", "assigned_to")
                  .annotate(finding_count=Coalesce(Subquery(counted), 0)).filter(pk__in=alert_ids))
    teams: dict[object, set[int]] = {}
    for patient_id, team_id in TreatmentEpisode.objects.filter(
            patient_id__in={a.patient_id for a in alerts}).values_list("patient_id", "care_team_id"):
        teams.setdefault(patient_id, set()).add(team_id)
    # One message per team with all its changed alerts: a batch of readings touching many
    # patients is one delivery per triage page, not one per alert.
    by_team: dict[int, list[dict[str, Any]]] = {}
    for alert in alerts:
        payload = alert_payload(alert)
        for team_id in sorted(teams.get(alert.patient_id, ())):
            by_team.setdefault(team_id, []).append(payload)
    channel_sends.run(layer, lambda: _send_all(layer, by_team))


async def _send_all(layer: Any, by_team: dict[int, list[dict[str, Any]]]) -> None:
    """Every push of one broadcast in one trip to the event loop (proplatform.channel_sends:
    the process's sending loop, whose Redis connections stay open). One failed push does not
    stop the others."""
    for team_id, payloads in by_team.items():
        try:
            await layer.group_send(team_group(team_id), {"type": "alerts.changed", "alerts": payloads})
        except Exception:  # the database has it; pages catch up on reconnect
            log.exception("live push of alerts %s to team %s failed", [a["id"] for a in payloads], team_id)
