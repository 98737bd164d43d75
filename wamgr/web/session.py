"""Dashboard sessions: the API key exchanged for a signed, expiring cookie, and CSRF tokens.

Signing in posts the API key once; the answer sets :data:`COOKIE`, which holds a random
session id signed with itsdangerous (``URLSafeTimedSerializer``) and is refused after
:data:`SESSION_MAX_AGE_S`. The cookie is HttpOnly (no script reads it), SameSite=Strict (no
other site's page sends it) and Secure when the dashboard is reached over HTTPS.

The signing secret is derived from the API key, so a session outlives a restart of the
server (the page reconnects by itself) and changing the key ends every session. Without an
API key (loopback only, see :func:`wamgr.api.server.check_binding`) nobody signs in: every
visitor gets a session at once, signed with a secret drawn at start.

Every form that acts carries a CSRF token: an HMAC of the session id, checked on POST
together with the ``Origin`` (and ``Sec-Fetch-Site``) headers a browser sends.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

#: The session cookie's name.
COOKIE = "wamgr_session"
#: The cookie's path: the dashboard's pages only (the API never reads it).
COOKIE_PATH = "/dashboard"
#: Seconds a session lasts after sign-in (12 hours).
SESSION_MAX_AGE_S = 12 * 3600
#: The form field that carries the CSRF token.
CSRF_FIELD = "csrf"


class SignInRequired(Exception):
    """The request has no valid session and the dashboard needs one (an API key is set)."""


class CrossSiteRequest(Exception):
    """A POST came without this session's CSRF token, or from another site's page."""


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: its session id and the CSRF token its forms carry."""

    sid: str
    csrf: str
    #: Set when this request started the session (no sign-in needed): the answer sets it.
    new_cookie: str | None = None


class Sessions:
    """Issues and checks session cookies and CSRF tokens for one app."""

    def __init__(self, api_key: bytes | None, *, max_age_s: int = SESSION_MAX_AGE_S):
        self.key_required = api_key is not None
        self._api_key = api_key
        self.max_age_s = max_age_s
        if api_key is None:
            self._secret = secrets.token_bytes(32)
        else:
            self._secret = hmac.new(api_key, b"wamgr-dashboard-session", hashlib.sha256).digest()
        self._serializer = URLSafeTimedSerializer(self._secret, salt="wamgr-dashboard")

    def key_matches(self, given: str) -> bool:
        """Whether ``given`` is the API key (compared in constant time)."""
        if self._api_key is None:
            return True
        return hmac.compare_digest(given.encode(), self._api_key)

    def issue(self) -> str:
        """A new session cookie's value."""
        return self._serializer.dumps({"sid": secrets.token_urlsafe(16)})

    def csrf_token(self, sid: str) -> str:
        """The CSRF token of session ``sid``."""
        return hmac.new(self._secret, f"csrf:{sid}".encode(), hashlib.sha256).hexdigest()

    def read(self, request: Request) -> Session | None:
        """The request's session if its cookie is valid and unexpired, else None."""
        value = request.cookies.get(COOKIE)
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=self.max_age_s)
        except BadSignature:  # tampered, signed with another key, or expired
            return None
        sid = data.get("sid") if isinstance(data, dict) else None
        if not isinstance(sid, str):
            return None
        return Session(sid, self.csrf_token(sid))

    def require(self, request: Request) -> Session:
        """The request's session; without an API key a new one if it has none;
        SignInRequired otherwise."""
        session = self.read(request)
        if session is not None:
            return session
        if self.key_required:
            raise SignInRequired()
        cookie = self.issue()
        sid = self._serializer.loads(cookie)["sid"]
        return Session(sid, self.csrf_token(sid), new_cookie=cookie)

    def check_post(self, request: Request, session: Session, token: str | None) -> None:
        """Refuse (CrossSiteRequest) a POST without the session's token or sent by another
        site's page."""
        check_same_origin(request)
        if token is None or not hmac.compare_digest(token.encode(), session.csrf.encode()):
            raise CrossSiteRequest()

    def set_cookie(self, response: Response, request: Request, value: str) -> None:
        """Make ``response`` set the session cookie ``value``."""
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.max_age_s,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def clear_cookie(self, response: Response) -> None:
        """Make ``response`` delete the session cookie."""
        response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


def check_same_origin(request: Request) -> None:
    """Refuse (CrossSiteRequest) a request a browser says came from another site: its
    ``Sec-Fetch-Site`` is ``cross-site``, or its ``Origin`` is not this server's."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CrossSiteRequest()
    origin = request.headers.get("origin")
    if origin is None:
        return  # no browser sent it: the CSRF token alone decides
    host = request.headers.get("host", "")
    if origin not in (f"http://{host}", f"https://{host}"):
        raise CrossSiteRequest()


#: The cookie that carries a one-time message to the page an action redirects to.
FLASH_COOKIE = "wamgr_flash"
#: Seconds a message waits to be shown.
FLASH_MAX_AGE_S = 60


class Flashes:
    """One-time messages ("reconnect sent") from an action to the page it redirects to,
    in a short-lived signed cookie."""

    def __init__(self, sessions: Sessions):
        self._serializer = URLSafeTimedSerializer(sessions._secret, salt="wamgr-flash")

    def leave(self, response: Response, text: str, *, error: bool = False) -> None:
        """Make ``response`` carry ``text`` to the next page."""
        response.set_cookie(
            FLASH_COOKIE,
            self._serializer.dumps({"text": text, "error": error}),
            max_age=FLASH_MAX_AGE_S,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
        )

    def take(self, request: Request) -> dict | None:
        """The message waiting for this page (``{"text", "error"}``), or None; the page
        deletes the cookie (see :meth:`forget`)."""
        value = request.cookies.get(FLASH_COOKIE)
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=FLASH_MAX_AGE_S)
        except BadSignature:
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def forget(response: Response) -> None:
        """Make ``response`` delete the message cookie."""
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
