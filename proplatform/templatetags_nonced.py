"""``{{ svg|nonced:request }}``: an inline SVG (pygal's charts) with the request's CSP nonce on
its <style> elements, so the Content-Security-Policy (settings.CONTENT_SECURITY_POLICY) lets
them style the chart without allowing inline style elements in general."""

from django import template
from django.http import HttpRequest
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def nonced(svg: str, request: HttpRequest) -> SafeString:
    nonce = getattr(request, "csp_nonce", None)
    if nonce is None or "<style" not in svg:
        return mark_safe(svg)  # noqa: S308 - the charts' own markup, built by the server
    return mark_safe(svg.replace("<style", f'<style nonce="{escape(str(nonce))}"'))  # noqa: S308
