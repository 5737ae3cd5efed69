"""The `Host` header check that stops DNS rebinding.

A web page on evil.example can point its own name at 127.0.0.1 and then script requests to a
server on this machine; the browser treats them as same-origin with evil.example, but they
arrive with `Host: evil.example`. So a request is answered only when its Host names this
server: localhost, 127.0.0.1, [::1], the address it is bound to, or a name listed in
CANDOR_ALLOWED_HOSTS (comma-separated; `*` turns the check off). A server bound to every
address (0.0.0.0 or ::) also answers any IP address, since a rebinding attack needs a name.
Anything else gets 421 Misdirected Request.
"""

from __future__ import annotations

import ipaddress

from fastapi import Request

from candor.api.errors import error_response
from candor.config import env

ALWAYS = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"", "0.0.0.0", "::"})
SETTING = "CANDOR_ALLOWED_HOSTS"


def host_name(header: str) -> str:
    """The host part of a Host header, lower-case, without port, brackets or a final dot."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:
        header = header.split(":", 1)[0]
    return header.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    def __init__(self, bound_host: str = "127.0.0.1", extra: str | None = None):
        extra = (env(SETTING) or "") if extra is None else extra
        names = {host_name(n) for n in extra.split(",") if n.strip()}
        self.any_host = "*" in names
        self.wildcard_bind = host_name(bound_host) in WILDCARDS
        self.allowed = ALWAYS | names | {host_name(bound_host)}

    def allows(self, header: str | None) -> bool:
        if header is None or self.any_host:  # no Host at all: not a browser, so not rebinding
            return True
        name = host_name(header)
        return name in self.allowed or (self.wildcard_bind and _is_ip(name))


class HostCheckMiddleware:
    """Pure ASGI: refuses requests whose Host this server does not answer to."""

    def __init__(self, app, policy: HostPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        raw = dict(scope.get("headers") or []).get(b"host")
        header = raw.decode("latin-1") if raw is not None else None
        if self.policy.allows(header):
            return await self.app(scope, receive, send)
        shown = header.encode("ascii", "backslashreplace").decode()[:200]
        response = error_response(Request(scope), 421, "invalid_request_error",
                                  f"host: this server does not answer to Host {shown!r} (a guard against DNS "
                                  f"rebinding); use localhost or its address, or list the name in {SETTING}")
        await response(scope, receive, send)
