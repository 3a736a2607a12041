"""Who may read the page: the rules for the bound address, the token and the Host header.

- The page listens on loopback unless the config names another address, and then only with a
  token (checked when the config is read; `is_loopback` is the config's rule).
- With a token, every request carries it: `Authorization: Bearer TOKEN` (Prometheus, curl), or
  the cookie the page sets after `/?token=TOKEN` (a browser, whose images cannot send headers).
- On loopback, the Host header must name loopback too: a web page elsewhere that re-points its
  own name at 127.0.0.1 (DNS rebinding) must not read the camera through the visitor's browser.
"""

from __future__ import annotations

import hmac
from http.cookies import CookieError, SimpleCookie

from ..config import is_loopback

COOKIE = "edgewatch_token"


def host_header_allowed(header: str | None) -> bool:
    """A Host header fit for a server bound to loopback: none at all (HTTP/1.0), or a loopback
    name or address, with any port."""
    if not header:
        return True
    host = header.strip()
    if host.startswith("["):  # [::1]:8090
        host = host[: host.find("]") + 1] if "]" in host else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return is_loopback(host)


def presented_token(authorization: str | None, cookie: str | None) -> str | None:
    """The token a request carries, from its Authorization header or else its cookie."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if cookie:
        try:
            morsel = SimpleCookie(cookie).get(COOKIE)
        except CookieError:
            return None
        return morsel.value if morsel is not None else None
    return None


def token_matches(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())


def cookie_header(token: str) -> str:
    """Set-Cookie for the page: not readable by scripts, never sent by other sites' pages."""
    return f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
