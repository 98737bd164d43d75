"""Signing in (the API key exchanged for a session cookie) and signing out.

Without an API key nobody signs in: the sign-in page leads to the dashboard. A wrong key is
answered 401 with the form again and a message; every refusal is logged (without the key).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from loguru import logger

from wamgr.web.context import Board, PostSession
from wamgr.web.session import check_same_origin
from wamgr.web.views import render

router = APIRouter(prefix="/dashboard", include_in_schema=False)

#: The longest API key the form takes.
MAX_KEY_CHARS = 1024


def safe_next(target: str | None) -> str:
    """``target`` if it is a path of the dashboard, else the dashboard (never another site)."""
    if target and target.startswith("/dashboard") and not target.startswith("//"):
        return target
    return "/dashboard"


@router.get("/login")
def login_page(request: Request, dashboard: Board, next: str = "/dashboard") -> Response:
    """The sign-in form (or, with no API key set, the dashboard itself)."""
    if not dashboard.sessions.key_required or dashboard.sessions.read(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", page_name="login", next=safe_next(next), error=None)


@router.post("/login")
def login(
    request: Request,
    dashboard: Board,
    key: Annotated[str, Form(max_length=MAX_KEY_CHARS)] = "",
    next: Annotated[str, Form()] = "/dashboard",
) -> Response:
    """Exchange the API key for a session cookie; 401 with a message for a wrong key."""
    check_same_origin(request)
    if not dashboard.sessions.key_matches(key):
        client = request.client.host if request.client else "?"
        logger.warning("dashboard: sign-in refused from {} (wrong API key)", client)
        return render(
            request,
            "login.html",
            status_code=401,
            page_name="login",
            next=safe_next(next),
            error="That is not the API key of this server. Try again.",
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    dashboard.sessions.set_cookie(response, request, dashboard.sessions.issue())
    return response


@router.post("/logout")
def logout(dashboard: Board, _session: PostSession) -> Response:
    """End the session: the cookie is deleted and the sign-in page shown."""
    response = RedirectResponse("/dashboard/login", status_code=303)
    dashboard.sessions.clear_cookie(response)
    return response
