"""Who may call the HTTP server, decided before any route runs (pure ASGI, every route, MCP included).

In order, each refusal answered in the error shape of `sie_mcp/errors.py` without reading the body:

1. **Host** (421): the Host header must name this server: a loopback name (`127.0.0.1`, `localhost`,
   `[::1]`, any port) or one of `--allowed-hosts`. A web page that re-binds its own DNS name to
   127.0.0.1 sends its own name as Host, so this is what stops DNS rebinding; it holds on a 0.0.0.0 bind
   too, where the operator lists the names the server is reached by.
2. **Origin** (403): a browser's cross-site request carries Origin; it must be a loopback origin or one of
   `--allowed-origins`. Requests without Origin (every non-browser client) pass.
3. **Bearer token** (401 with `WWW-Authenticate: Bearer`), when tokens are configured: every route but
   `/healthz` and `/readyz` (and `/metrics` unless `--metrics-auth`). Compared in constant time against
   every token; tokens are never logged (the log names the route, not the header).
4. **Content type** (415): a POST must be `application/json` (or `+json`). A `text/plain` POST is what a
   page may send without a CORS preflight; refusing it means no web page can make the server compute.

The SDK's own Host/Origin check on `/mcp` is turned off (`transport_security()`): this one covers every
route with one set of rules, which the SDK's (loopback names only, and nothing for a 0.0.0.0 bind) did not.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from sie_mcp.errors import send_problem

if TYPE_CHECKING:
    from sie_mcp.settings import Settings

log = logging.getLogger("sie_mcp")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # probes carry no token


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_tokens(settings: Settings) -> list[bytes]:
    """Tokens from `--auth-token-file` (one per line; blank lines and `#` comments skipped) and
    `SIE_AUTH_TOKENS`."""
    tokens = [t.get_secret_value().strip() for t in settings.auth_tokens]
    if settings.auth_token_file is not None:
        try:
            lines = settings.auth_token_file.read_text().splitlines()
        except OSError as e:
            raise ValueError(f"cannot read --auth-token-file: {e.strerror}") from None
        tokens += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [t.encode() for t in tokens if t]


@dataclass(frozen=True)
class Access:
    """The resolved rules: what the guard enforces, built once from the settings at start-up."""

    tokens: tuple[bytes, ...]  # empty: no authentication
    hosts: frozenset[str]  # lower-case host names or host:port; "*" accepts any
    origins: frozenset[str]  # lower-case scheme://host[:port]; "*" accepts any
    metrics_auth: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        """Raises ValueError where the settings would expose the server: off loopback, authentication is
        required unless `--no-auth` says otherwise. Widening is logged loudly."""
        tokens = tuple(read_tokens(settings))
        if settings.no_auth and tokens:
            log.warning("SECURITY: --no-auth given: the %d configured token(s) are ignored", len(tokens))
            tokens = ()
        if not tokens and settings.transport == "http" and not is_loopback(settings.host):
            if not settings.no_auth:
                raise ValueError(f"refusing to serve on {settings.host} without authentication: set "
                                 "--auth-token-file (or SIE_AUTH_TOKENS), or pass --no-auth if something in front "
                                 "of the server authenticates callers")
            log.warning("SECURITY: serving on %s WITHOUT AUTHENTICATION (--no-auth): anyone who can reach the "
                        "port can use every tool", settings.host)
        hosts = frozenset(h.strip().lower() for h in [*LOOPBACK_HOSTS, *settings.allowed_hosts] if h.strip())
        origins = frozenset(o.strip().lower().rstrip("/") for o in settings.allowed_origins if o.strip())
        if "*" in hosts:
            log.warning("SECURITY: --allowed-hosts '*': any Host header is accepted (no DNS-rebinding protection)")
        if "*" in origins:
            log.warning("SECURITY: --allowed-origins '*': any web page may call this server from a browser")
        if settings.transport == "http" and not is_loopback(settings.host) and hosts <= set(LOOPBACK_HOSTS):
            log.warning("bound to %s, but only loopback Host names are accepted: list the names clients use "
                        "(--allowed-hosts / SIE_ALLOWED_HOSTS), or every request from elsewhere gets 421",
                        settings.host)
        return cls(tokens, hosts, origins, settings.metrics_auth)

    def host_allowed(self, host: str) -> bool:
        host = host.lower()
        if "*" in self.hosts or host in self.hosts:
            return True
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host  # strip the port ([::1]:80 too)
        return name in self.hosts or is_loopback(name)

    def origin_allowed(self, origin: str) -> bool:
        origin = origin.lower().rstrip("/")
        if "*" in self.origins or origin in self.origins:
            return True
        parts = urlsplit(origin)
        try:
            hostname = parts.hostname or ""
            _ = parts.port  # a malformed port raises
        except ValueError:
            return False
        return parts.scheme in ("http", "https") and (is_loopback(hostname) or
                                                      f"{parts.scheme}://{hostname}" in self.origins)

    def token_ok(self, authorization: str | None) -> bool:
        if authorization is None:
            return False
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False
        candidate = given.strip().encode()
        ok = False
        for token in self.tokens:  # every token compared, in constant time each
            ok |= hmac.compare_digest(candidate, token)
        return ok

    def needs_token(self, path: str) -> bool:
        if not self.tokens or path in OPEN_PATHS:
            return False
        return self.metrics_auth or path != "/metrics"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


def is_json_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class Guard:
    """The checks above, in front of the whole app."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app, self.access = app, access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        if host is None or not self.access.host_allowed(host):
            log.info("refused: Host %r is not this server's (%s %s)", (host or "")[:100], scope["method"],
                     scope["path"])
            await send_problem(send, 421, "MisdirectedRequest", "the Host header does not name this server; an "
                               "operator can allow more names with --allowed-hosts")
            return
        origin = _header(scope, b"origin")
        if origin is not None and origin != "null" and not self.access.origin_allowed(origin):
            log.info("refused: Origin %r (%s %s)", origin[:100], scope["method"], scope["path"])
            await send_problem(send, 403, "Forbidden", "requests from this web origin are not allowed; an operator "
                               "can allow it with --allowed-origins")
            return
        if origin == "null":  # sandboxed frames and file:// pages: never a trusted caller
            await send_problem(send, 403, "Forbidden", "requests from an opaque (null) origin are not allowed")
            return
        if self.access.needs_token(scope["path"]) and not self.access.token_ok(_header(scope, b"authorization")):
            log.info("refused: missing or wrong bearer token (%s %s)", scope["method"], scope["path"])
            await send_problem(send, 401, "Unauthorized", "this server needs 'Authorization: Bearer <token>'",
                               [("WWW-Authenticate", 'Bearer realm="sie-mcp"')])
            return
        if scope["method"] == "POST" and not is_json_type(_header(scope, b"content-type")):
            await send_problem(send, 415, "UnsupportedMediaType", "send the body as JSON with "
                               "'Content-Type: application/json'")
            return
        await self.app(scope, receive, send)


def cors_origins(settings: Settings) -> list[str]:
    """Origins to answer CORS for: only those the operator configured (CORS is off by default)."""
    return [o.rstrip("/") for o in settings.allowed_origins if o.strip()]


def transport_security() -> object:
    """The SDK's transport settings: its Host/Origin check off, because the Guard covers every route."""
    from mcp.server.transport_security import TransportSecuritySettings

    return TransportSecuritySettings(enable_dns_rebinding_protection=False)
