"""Settings of the example site: one app (``whatsapp``), no Django database (wamgr keeps
its own PostgreSQL, from ``WAMGR_DATABASE_URL``, or the embedded one)."""

import os
import sys

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "only-for-the-example")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["whatsapp"]
ROOT_URLCONF = "wa_site.urls"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

#: Start wamgr in AppConfig.ready: in the serving process (runserver, or a WSGI/ASGI server
#: importing the site), not for other management commands (check, shell, ...).
WAMGR_AUTOSTART = os.path.basename(sys.argv[0]) != "manage.py" or sys.argv[1:2] == ["runserver"]

# wamgr's records (routed into logging by the app, see whatsapp/apps.py), tenant on each line.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"wamgr": {"format": "%(levelname)s %(name)s [%(tenant)s] %(message)s"}},
    "handlers": {"wamgr": {"class": "logging.StreamHandler", "formatter": "wamgr"}},
    "loggers": {"wamgr": {"handlers": ["wamgr"], "level": "INFO", "propagate": False}},
}
