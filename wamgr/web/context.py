"""What every dashboard route is given: the dashboard of the app, and the request's session.

A page takes :data:`PageSession` (a valid session, else SignInRequired, which the app turns
into a redirect to the sign-in page); a form that acts takes :data:`PostSession`, which also
checks the form's CSRF token and the request's origin (CrossSiteRequest, 403).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request

from wamgr.manager import ConnectionManager
from wamgr.store.dashboard import DashboardStore
from wamgr.web.live import LiveHub
from wamgr.web.session import CSRF_FIELD, Flashes, Session, Sessions


class Dashboard:
    """The dashboard of one app: its manager, its sessions, its live hub."""

    def __init__(self, manager: ConnectionManager, api_key: bytes | None):
        self.manager = manager
        self.sessions = Sessions(api_key)
        self.flashes = Flashes(self.sessions)
        self.live = LiveHub(manager)

    @property
    def board(self) -> DashboardStore:
        """The dashboard's queries on the running manager's database (ManagerStopped if
        the manager is not running)."""
        return self.manager.runtime.dashboard


def get_dashboard(request: Request) -> Dashboard:
    """The dashboard of the app serving ``request``."""
    return request.app.state.dashboard


Board = Annotated[Dashboard, Depends(get_dashboard)]


def page_session(request: Request, dashboard: Board) -> Session:
    """The request's session (SignInRequired without one when a key is set); the page
    rendered for it also shows the message an action left."""
    session = dashboard.sessions.require(request)
    request.state.dashboard_session = session
    request.state.dashboard_flash = dashboard.flashes.take(request)
    return session


PageSession = Annotated[Session, Depends(page_session)]


def post_session(
    request: Request,
    dashboard: Board,
    session: PageSession,
    csrf: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
) -> Session:
    """The session of a form that acts, once its CSRF token and origin are checked."""
    dashboard.sessions.check_post(request, session, csrf)
    return session


PostSession = Annotated[Session, Depends(post_session)]
