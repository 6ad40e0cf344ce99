from django.urls import path

from outcomes import views_indicators as views

# Mounted under /quality/indicators/ (quality staff, analysts and administrators).
urlpatterns = [
    path("", views.indicator_home, name="indicator-home"),
    path("refresh/", views.indicator_refresh, name="indicator-refresh"),
    path("<slug:code>/", views.indicator_detail, name="indicator-detail"),
    path("<slug:code>/funnel/", views.indicator_funnel, name="indicator-funnel"),
    path("<slug:code>/<slug:table>.<slug:fmt>", views.indicator_download, name="indicator-download"),
]
