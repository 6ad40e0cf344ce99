"""Quality staff start an OMOP export and follow it: /quality/omop/ (page) and
/quality/omop/<id>.json (status, progress, counts and checks)."""

from datetime import datetime

from django import forms
from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.decorators import role_required
from accounts.http import AuthenticatedHttpRequest
from accounts.models import Role
from exports.models import OmopExportJob
from exports.omop.jobs import omop_job_create
from exports.omop.schema import OmopError


class OmopForm(forms.Form):
    schema = forms.CharField(label=gettext_lazy("Target schema"), max_length=63, initial="omop")
    since = forms.DateTimeField(label=gettext_lazy("Only changes since (optional)"), required=False)
    cohort = forms.IntegerField(label=gettext_lazy("Cohort number (optional)"), required=False, min_value=1)


@role_required(Role.QUALITY, Role.ADMIN)
def omop_jobs(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = OmopForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        since: datetime | None = form.cleaned_data["since"]
        try:
            job = omop_job_create(user=request.user, schema=form.cleaned_data["schema"], since=since,
                                  cohort_id=form.cleaned_data["cohort"], release_date=timezone.localdate(),
                                  request=request)
        except OmopError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("OMOP export %(id)s started.") % {"id": job.pk})
            return redirect("quality-omop")
    jobs = OmopExportJob.objects.select_related("requester").order_by("-created_at")[:50]
    return render(request, "exports/omop.html", {"form": form, "jobs": jobs})


@role_required(Role.QUALITY, Role.ADMIN)
def omop_job_status(request: AuthenticatedHttpRequest, job_id: int) -> JsonResponse:
    job = get_object_or_404(OmopExportJob, pk=job_id)
    return JsonResponse({"id": job.pk, "schema": job.schema, "status": job.status, "progress": job.progress,
                         "step": job.progress_text, "result": job.result, "failure": job.failure,
                         "created_at": job.created_at.isoformat(),
                         "finished_at": job.finished_at.isoformat() if job.finished_at else None})
