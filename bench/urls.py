"""The project's URLs plus a no-op endpoint behind the same authentication, the reference the
request benchmarks measure against."""

from django.urls import path
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import BearerTokenAuthentication
from monitoring.authentication import DeviceTokenAuthentication
from proplatform.urls import urlpatterns as project_urlpatterns


class NoOp(APIView):
    authentication_classes = [DeviceTokenAuthentication, BearerTokenAuthentication, SessionAuthentication]

    def post(self, request: Request) -> Response:
        return Response({"ok": True}, status=201)


urlpatterns = [path("bench/noop", NoOp.as_view()), *project_urlpatterns]
