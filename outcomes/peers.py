"""“Patients like me” (issue 23): a patient's own scores at each outcome timepoint beside the
median and 25th–75th percentile of similar patients — same programme and instrument score, same
sex, same age band at treatment start — at the same time since their treatment start.

Only where at least ``PEERS_MIN`` (20) such patients contribute a score at that timepoint; else
the reason is given instead. Similar patients who withdrew from secondary use never contribute,
and the patient never compares with themself. What is shown of the others is three numbers per
timepoint over at least 20 people: an aggregate, not a read of their records.

Shown on the patient's "Mine svar" page and the clinician's patient page (clinic.my_answers,
clinic.views), which sit above outcomes in the layers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from outcomes.indicators import Dataset, EpisodeFacts, age_band, score_pair
from outcomes.stats import quantile
from outcomes.timepoints import DEFAULT_TIMEPOINTS
from patients.models import TreatmentEpisode, age_on
from questionnaires.library.mid import MIDS


def peers_min() -> int:
    return int(getattr(settings, "OUTCOMES_PEERS_MIN", 20))


@dataclass(frozen=True)
class PeerPoint:
    timepoint: str
    own: float | None
    peers: int
    median: float | None
    q1: float | None
    q3: float | None


@dataclass(frozen=True)
class PeerComparison:
    label: str
    points: list[PeerPoint]
    svg: str
    minimum: int

    @property
    def any_band(self) -> bool:
        return any(p.median is not None for p in self.points)


def _score_at(responses: list[Any], e: EpisodeFacts, code: str, tp: Any) -> float | None:
    if tp.code == "baseline":
        values = [v for day, _at, scores in responses
                  if tp.start_day <= (day - e.start).days <= tp.end_day
                  for s in scores if (s.get("code") or {}).get("code") == code and (v := s.get("value")) is not None]
        return float(values[-1]) if values else None
    pair = score_pair(responses, e, code, tp)
    if pair is not None:
        return pair[1]
    # No baseline: the follow-up score alone still places the patient at the timepoint.
    best = None
    for day, at, scores in responses:
        d = (day - e.start).days
        if tp.start_day <= d <= tp.end_day:
            for s in scores:
                if (s.get("code") or {}).get("code") == code and s.get("value") is not None:
                    key = (abs(d - tp.target_day), at)
                    if best is None or key < best[0]:
                        best = (key, float(s["value"]))
    return best[1] if best else None


def patient_peer_comparisons(*, patient_id: uuid.UUID, today: date | None = None) -> list[PeerComparison]:
    today = today or timezone.localdate()
    own_episodes = list(TreatmentEpisode.objects.filter(patient_id=patient_id, treatment_start__lte=today)
                        .select_related("patient", "care_team", "program").order_by("treatment_start"))
    out: list[PeerComparison] = []
    for ep in own_episodes:
        band = age_band(age_on(ep.patient.birth_date, ep.treatment_start))
        team = ep.care_team
        me = EpisodeFacts(ep.pk, ep.patient_id, ep.program_id, ep.care_team_id, team.name, team.department,
                          team.region, ep.patient.sex, band, ep.treatment_start, ep.end)
        peers_qs = (TreatmentEpisode.objects.filter(program_id=ep.program_id, patient__sex=ep.patient.sex,
                                                    patient__secondary_use_withdrawn_at__isnull=True,
                                                    treatment_start__lte=today)
                    .exclude(patient_id=patient_id)
                    .values_list("pk", "patient_id", "treatment_start", "end", "patient__birth_date"))
        peers = [EpisodeFacts(pk, pid, ep.program_id, 0, "", "", "", ep.patient.sex, band, start, end)
                 for pk, pid, start, end, birth in peers_qs if age_band(age_on(birth, start)) == band]
        ds = Dataset([me, *peers], today)
        own_responses = ds.responses.get(ep.patient_id, [])
        codes = {(s.get("code") or {}).get("code") for _d, _a, scores in own_responses for s in scores}
        for code in sorted(c for c in codes if c in MIDS):
            mid = MIDS[code]
            points = []
            for tp in DEFAULT_TIMEPOINTS:
                own = _score_at(own_responses, me, code, tp)
                values = [v for p in peers if (v := _score_at(ds.responses.get(p.patient_id, []), p, code, tp))
                          is not None]
                enough = len(values) >= peers_min()
                points.append(PeerPoint(
                    timepoint=str(tp.label), own=own, peers=len(values),
                    median=quantile(values, 0.5) if enough else None,
                    q1=quantile(values, 0.25) if enough else None, q3=quantile(values, 0.75) if enough else None))
            label = f"{mid.label} — {ep.program.name}"
            out.append(PeerComparison(label=label, points=points, svg=_svg(label, points), minimum=peers_min()))
    return out


def _svg(label: str, points: list[PeerPoint]) -> str:
    width, height, left, top, plot_h = 640, 300, 50, 30, 220
    values = [v for p in points for v in (p.own, p.q1, p.q3, p.median) if v is not None] or [0.0, 1.0]
    hi = max(values) * 1.1 or 1.0
    x = lambda i: left + (width - left - 20) * (i + 0.5) / len(points)  # noqa: E731
    y = lambda v: top + plot_h - plot_h * v / hi  # noqa: E731
    desc = "; ".join(
        f"{p.timepoint}: {_('you')} {number_format(p.own, 0) if p.own is not None else '–'}, "
        + (f"{_('median')} {number_format(p.median, 1)} ({number_format(p.q1, 1)}–{number_format(p.q3, 1)})"
           if p.median is not None and p.q1 is not None and p.q3 is not None  # set together
           else _("too few similar patients")) for p in points)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="{escape(label, {chr(34): "&quot;"})}. {escape(desc, {chr(34): "&quot;"})}" '
           f'focusable="false" font-family="system-ui, sans-serif" font-size="15">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for i, p in enumerate(points):
        if p.median is not None and p.q1 is not None and p.q3 is not None:
            out.append(f'<rect x="{x(i) - 30:.1f}" y="{y(p.q3):.1f}" width="60" '
                       f'height="{max(2, y(p.q1) - y(p.q3)):.1f}" fill="#d9e6f2"/>')
            out.append(f'<line x1="{x(i) - 30:.1f}" x2="{x(i) + 30:.1f}" y1="{y(p.median):.1f}" '
                       f'y2="{y(p.median):.1f}" stroke="#0b5394" stroke-width="3"/>')
        if p.own is not None:
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(p.own):.1f}" r="8" fill="#b00020"/>')
        out.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 24}" text-anchor="middle" fill="#1a1a1a">'
                   f'{escape(p.timepoint)}</text>')
    out.append(f'<line x1="{left}" x2="{width - 20}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#595959"/>')
    out.append("</svg>")
    return "\n".join(out)
