"""The floor under the request benchmarks: a WSGI app with no Django at all. It reads the body
and answers 201 with a small JSON body, served by the same server command as the project, so
that a run shows what the server and the load generator alone cost on the machine."""

from collections.abc import Callable, Iterable
from typing import Any

_BODY = b'{"ok":true}'


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(_BODY)))])
    return [_BODY]
