from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import api as accounts_api
from accounts import views as accounts_views
from alerts import api as alerts_api
from alerts import api_backtest as alerts_backtest_api
from alerts import views as alerts_views
from alerts import views_backtest as alerts_backtest_views
from alerts import views_safety as alerts_safety_views
from clinic import my_answers as questionnaire_history
from clinic import views as patients_views
from clinic import views_alerts as patient_alert_forms
from clinic import views_home as home_views
from clinic import views_list as patients_list_views
from clinic import views_readings as readings_views
from clinic import views_relatives as patients_relatives
from clinic import views_review as patients_review
from editor import views as editor_views
from exports import views as exports_views
from exports import views_omop as exports_omop
from exports import views_quality as exports_quality
from interop import views as fhir_views
from interop import views_alerts as fhir_alerts
from interop import views_group as fhir_groups
from interop import views_measure as fhir_measures
from interop import views_observations as fhir_observations
from interop import views_questionnaires as fhir_questionnaires
from interop import views_reads as fhir_reads
from monitoring import api as monitoring_api
from monitoring import views_devices as device_views
from outcomes import views as outcomes_views
from proplatform.admin_site import admin_login
from proplatform.health import health
from questionnaires import views as questionnaire_views
from schedules import views as schedules_views
from smart import views as smart_views

api_v1 = [
    path("auth/token", accounts_api.TokenView.as_view(), name="api-token"),
    path("auth/tokens", accounts_api.TokenListView.as_view(), name="api-tokens"),
    path("auth/tokens/<int:token_id>", accounts_api.TokenDetailView.as_view(), name="api-token-detail"),
    path("readings", monitoring_api.ReadingCreateView.as_view(), name="api-readings"),
    path("alerts", alerts_api.AlertListView.as_view(), name="api-alerts"),
    path("alerts/<int:alert_id>/acknowledge", alerts_api.AlertAcknowledgeView.as_view(),
         name="api-alert-acknowledge"),
    path("alerts/<int:alert_id>/assign", alerts_api.AlertAssignView.as_view(), name="api-alert-assign"),
    path("alerts/<int:alert_id>/resolve", alerts_api.AlertResolveView.as_view(), name="api-alert-resolve"),
    path("alerts/acknowledge", alerts_api.AlertBulkAcknowledgeView.as_view(), name="api-alerts-acknowledge"),
    path("snoozes", alerts_api.SnoozeCreateView.as_view(), name="api-snoozes"),
    path("rules/backtest", alerts_backtest_api.BacktestView.as_view(), name="api-rules-backtest"),
    path("snoozes/<int:snooze_id>/end", alerts_api.SnoozeEndView.as_view(), name="api-snooze-end"),
]

fhir = [
    path("", fhir_observations.BundleSlashView.as_view(), name="fhir-bundle"),
    path("metadata", fhir_views.MetadataView.as_view(), name="fhir-metadata"),
    # SMART discovery where the spec puts it, under the FHIR base URL (and at the root, below)
    path(".well-known/smart-configuration", smart_views.smart_configuration, name="fhir-smart-configuration"),
    path("Group", fhir_groups.GroupSearchView.as_view(), name="fhir-groups"),
    path("Group/<str:group_id>", fhir_groups.GroupReadView.as_view(), name="fhir-group"),
    path("Measure", fhir_measures.MeasureSearchView.as_view(), name="fhir-measures"),
    path("Measure/<str:measure_id>/$evaluate-measure", fhir_measures.EvaluateMeasureView.as_view(),
         name="fhir-evaluate-measure"),
    path("Measure/<str:measure_id>", fhir_measures.MeasureReadView.as_view(), name="fhir-measure"),
    path("MeasureReport", fhir_measures.MeasureReportSearchView.as_view(), name="fhir-measure-reports"),
    # before Patient/<id>, which would take "$export" for an id
    path("Patient", fhir_views.PatientSearchView.as_view(), name="fhir-patient-search"),
    path("Patient/_search", fhir_views.PatientSearchPostView.as_view(), name="fhir-patient-search-post"),
    path("Patient/$export", exports_views.PatientExportKickoffView.as_view(), name="fhir-patient-export"),
    path("Patient/<str:patient_id>", fhir_views.PatientReadView.as_view(), name="fhir-patient"),
    path("Questionnaire", fhir_questionnaires.QuestionnaireCollectionView.as_view(), name="fhir-questionnaires"),
    path("Questionnaire/<str:questionnaire_id>", fhir_questionnaires.QuestionnaireReadView.as_view(),
         name="fhir-questionnaire"),
    path("Observation", fhir_observations.ObservationCollectionView.as_view(), name="fhir-observations"),
    path("Observation/<str:observation_id>", fhir_observations.ObservationReadView.as_view(), name="fhir-observation"),
    path("QuestionnaireResponse", fhir_questionnaires.QuestionnaireResponseCollectionView.as_view(),
         name="fhir-questionnaire-responses"),
    path("QuestionnaireResponse/<str:response_id>", fhir_reads.QuestionnaireResponseReadView.as_view(),
         name="fhir-questionnaire-response"),
    path("Device/<str:device_id>", fhir_reads.DeviceReadView.as_view(), name="fhir-device"),
    path("Flag", fhir_alerts.FlagSearchView.as_view(), name="fhir-flags"),
    path("Flag/<str:flag_id>", fhir_alerts.FlagReadView.as_view(), name="fhir-flag"),
    path("DetectedIssue", fhir_alerts.DetectedIssueSearchView.as_view(), name="fhir-detected-issues"),
    path("DetectedIssue/<str:detected_issue_id>", fhir_alerts.DetectedIssueReadView.as_view(),
         name="fhir-detected-issue"),
    # Bulk Data $export (exports app); the Group read itself maps the cohorts (interop.views_group).
    path("$export", exports_views.ExportKickoffView.as_view(), name="fhir-export"),
    path("Group/<str:group_id>/$export", exports_views.GroupExportKickoffView.as_view(), name="fhir-group-export"),
    path("$export-status/<uuid:job_id>", exports_views.ExportStatusView.as_view(), name="fhir-export-status"),
    path("$export-file/<uuid:job_id>/<str:name>", exports_views.ExportFileView.as_view(), name="fhir-export-file"),
    # Last: anything unmatched is a FHIR 404 or 405 OperationOutcome, never Django's HTML page.
    re_path(r"^(?P<rest>.*)$", fhir_views.FhirFallbackView.as_view(), name="fhir-fallback"),
]

urlpatterns = [
    path("", accounts_views.home, name="home"),
    path("login/", accounts_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/two-factor/", accounts_views.two_factor, name="two-factor"),
    path("account/tokens/", accounts_views.tokens, name="account-tokens"),
    path("account/tokens/<int:token_id>/revoke/", accounts_views.token_revoke, name="account-token-revoke"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("me/", home_views.my_home, name="my-home"),
    path("me/questionnaires/<int:questionnaire_id>/", questionnaire_views.answer, name="questionnaire-answer"),
    path("me/questionnaires/<int:questionnaire_id>/page/<int:number>/", questionnaire_views.answer_page,
         name="questionnaire-page"),
    path("me/questionnaires/<int:questionnaire_id>/review/", questionnaire_views.review,
         name="questionnaire-review"),
    path("me/questionnaires/<int:questionnaire_id>/thanks/", questionnaire_views.receipt,
         name="questionnaire-receipt"),
    path("me/readings/new/", readings_views.reading_new, name="reading-new"),
    path("me/readings/new/<slug:measure>/", readings_views.reading_new_measure, name="reading-new-measure"),
    path("me/readings/", readings_views.my_readings, name="my-readings"),
    path("me/readings/<slug:measure>/", readings_views.my_readings, name="my-readings-measure"),
    path("me/readings/<slug:measure>/csv/", readings_views.my_readings_csv, name="my-readings-measure-csv"),
    path("me/answers/", questionnaire_history.my_answers, name="my-answers"),
    path("me/relatives/", patients_relatives.relatives, name="my-relatives"),
    path("for/", patients_relatives.relative_home, name="relative-home"),
    path("for/<uuid:patient_id>/", patients_relatives.act_for, name="relative-act-for"),
    path("me/relatives/<int:grant_id>/revoke/", patients_relatives.relative_revoke_view, name="my-relative-revoke"),
    path("triage/", alerts_views.triage, name="triage"),
    path("programmes/", editor_views.program_list, name="editor-programs"),
    path("programmes/new/", editor_views.program_new, name="editor-program-new"),
    path("programmes/<int:program_id>/", editor_views.program_edit, name="editor-program"),
    path("programmes/<int:program_id>/rules/new/<str:kind>/", editor_views.rule_edit, name="editor-rule-new"),
    path("programmes/<int:program_id>/rules/<int:rule_id>/", editor_views.rule_edit, name="editor-rule"),
    path("programmes/<int:program_id>/rules/<int:rule_id>/rollback/<int:version>/",
         editor_views.rule_rollback_view, name="editor-rule-rollback"),
    path("programmes/<int:program_id>/schedules/new/", editor_views.schedule_new, name="editor-schedule-new"),
    path("programmes/<int:program_id>/questionnaires/upload/", editor_views.questionnaire_upload,
         name="editor-questionnaire-upload"),
    path("programmes/<int:program_id>/questionnaires/<int:questionnaire_id>/edit/", editor_views.questionnaire_edit,
         name="editor-questionnaire-edit"),
    path("programmes/<int:program_id>/publish/", editor_views.program_publish_view, name="editor-program-publish"),
    path("programmes/<int:program_id>/enrol/", editor_views.enrol, name="editor-enrol"),
    path("rules/backtest/", alerts_backtest_views.backtest, name="rules-backtest"),
    path("rules/safety/", alerts_safety_views.safety_nets, name="rules-safety"),
    path("triage/acknowledge/", alerts_views.triage_acknowledge, name="triage-acknowledge"),
    path("patients/<uuid:patient_id>/alerts/<int:alert_id>/acknowledge/", patient_alert_forms.alert_acknowledge_page,
         name="alert-acknowledge"),
    path("patients/<uuid:patient_id>/alerts/<int:alert_id>/assign/", patient_alert_forms.alert_assign_page,
         name="alert-assign"),
    path("patients/<uuid:patient_id>/alerts/<int:alert_id>/resolve/", patient_alert_forms.alert_resolve_page,
         name="alert-resolve"),
    path("patients/<uuid:patient_id>/alerts/<int:alert_id>/snooze/", patient_alert_forms.alert_snooze_page,
         name="alert-snooze"),
    path("patients/<uuid:patient_id>/snoozes/new/", patient_alert_forms.snooze_new_page, name="snooze-new"),
    path("patients/<uuid:patient_id>/snoozes/<int:snooze_id>/end/", patient_alert_forms.snooze_end_page,
         name="snooze-end"),
    path("patients/<uuid:patient_id>/rules/<int:rule_id>/override/", patient_alert_forms.rule_override_page,
         name="rule-override"),
    path("patients/<uuid:patient_id>/rules/<int:rule_id>/revert/", patient_alert_forms.rule_override_revert_page,
         name="rule-override-revert"),
    path("patients/", patients_list_views.patient_list_view, name="patient-list"),
    path("patients/<uuid:patient_id>/", patients_views.patient_detail, name="patient-detail"),
    path("reviews/", patients_review.review_queue_page, name="review-queue"),
    path("reviews/bulk/", patients_review.review_bulk_page, name="review-bulk"),
    path("patients/<uuid:patient_id>/responses/<int:response_id>/review/", patients_review.response_review_page,
         name="response-review"),
    path("patients/<uuid:patient_id>/readings/<int:reading_id>/erroneous/", readings_views.reading_erroneous,
         name="reading-erroneous"),
    path("patients/<uuid:patient_id>/readings/<slug:measure>/", readings_views.patient_readings,
         name="patient-readings"),
    path("patients/<uuid:patient_id>/readings/<slug:measure>/csv/", readings_views.patient_readings_csv,
         name="patient-readings-csv"),
    path("devices/", device_views.device_list, name="device-list"),
    path("patients/<uuid:patient_id>/devices/", device_views.patient_devices, name="patient-devices"),
    path("patients/<uuid:patient_id>/devices/new/", device_views.device_new, name="device-new"),
    path("patients/<uuid:patient_id>/devices/lend/", device_views.device_lend_view, name="device-lend"),
    path("patients/<uuid:patient_id>/devices/<int:device_id>/", device_views.device_detail, name="device-detail"),
    path("patients/<uuid:patient_id>/devices/<int:device_id>/token/", device_views.device_token_new,
         name="device-token-new"),
    path("patients/<uuid:patient_id>/devices/<int:device_id>/token/revoke/", device_views.device_token_revoke_view,
         name="device-token-revoke"),
    path("patients/<uuid:patient_id>/pauses/new/", schedules_views.pause_new, name="pause-new"),
    path("patients/<uuid:patient_id>/pauses/<int:pause_id>/end/", schedules_views.pause_end_now, name="pause-end"),
    path("quality/", outcomes_views.overview, name="quality-overview"),
    path("quality/cohorts/", include("outcomes.urls")),
    path("quality/indicators/", include("outcomes.urls_indicators")),
    path("quality/sends/", exports_quality.sends, name="quality-sends"),
    path("quality/omop/", exports_omop.omop_jobs, name="quality-omop"),
    path("quality/omop/<int:job_id>.json", exports_omop.omop_job_status, name="quality-omop-status"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("fhir", fhir_observations.BundleView.as_view()),  # the FHIR base URL takes Bundles
    path("fhir/", include(fhir)),
    path("health/", health, name="health"),
    # SMART Backend Services (ADR 0018): discovery and the client-credentials token endpoint.
    path(".well-known/smart-configuration", smart_views.smart_configuration, name="smart-configuration"),
    path("oauth/token", smart_views.TokenView.as_view(), name="smart-token"),
    # The admin signs in through our login page, which asks for the TOTP code when the user has
    # turned two-factor login on; the admin's own login form would not.
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()

# Pages in the site's layout and language; JSON on FHIR and REST paths (proplatform.errors).
handler400 = "proplatform.errors.bad_request"
handler403 = "proplatform.errors.permission_denied"
handler404 = "proplatform.errors.page_not_found"
handler500 = "proplatform.errors.server_error"
