from django.urls import path

from outcomes import views

# Mounted under /quality/cohorts/ (quality staff and administrators only).
urlpatterns = [
    path("", views.cohort_list, name="cohort-list"),
    path("new/", views.cohort_new, name="cohort-new"),
    path("<int:cohort_id>/", views.cohort_detail, name="cohort-detail"),
    path("<int:cohort_id>/edit/", views.cohort_edit, name="cohort-edit"),
    path("<int:cohort_id>/delete/", views.cohort_delete_view, name="cohort-delete"),
]
