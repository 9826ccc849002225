"""Token auth and the origin check, on every route (design §15).

A token is accepted as ``Authorization: Bearer T``, the ``viwo_token`` cookie, or ``?token=T``. Without a
valid one: HTTP 401 (a WebSocket is never upgraded). A request with a browser ``Origin`` must come from the
server's own origin or one listed in ``allowed_origins`` (403 otherwise); programs send no ``Origin`` and
are accepted. Opening a page with ``?token=`` sets the cookie, so the page keeps it (Jupyter-style).
"""

from __future__ import annotations

import hmac

from aiohttp import web

COOKIE = "viwo_token"
#: The user a request's token belongs to (set by the middleware on every request it lets through).
USER_KEY: web.RequestKey[str] = web.RequestKey("viwo_user", str)


def find_token(request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    token = request.query.get("token")
    if token:
        return token
    return request.cookies.get(COOKIE)


def user_for(tokens: dict[str, str], token: str | None) -> str | None:
    """The user owning ``token`` (compared in constant time), else None."""
    if not token:
        return None
    found = None
    given = token.encode("utf-8", "surrogateescape")
    for candidate, user in tokens.items():
        if hmac.compare_digest(candidate.encode("utf-8"), given):
            found = user
    return found


def origin_allowed(request, allowed: list[str]) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    origin = origin.rstrip("/")
    own = f"{request.scheme}://{request.host}"
    return origin == own or origin in allowed


def middleware(config):
    @web.middleware
    async def auth(request, handler):
        if not origin_allowed(request, config.allowed_origins):
            return web.json_response({"error": "origin not allowed",
                                      "hint": "add it to [server] allowed_origins in viwo.toml"}, status=403)
        token = find_token(request)
        user = user_for(config.tokens, token)
        if user is None:
            return web.json_response({"error": "unauthorized",
                                      "hint": "open the URL `viwo serve` printed (it carries ?token=…), or send "
                                              "Authorization: Bearer <token>"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        request[USER_KEY] = user
        response = await handler(request)
        if request.query.get("token") and request.method == "GET" and request.path == "/" and \
                hasattr(response, "set_cookie"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    return auth
