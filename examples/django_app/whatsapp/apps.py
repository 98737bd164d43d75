"""The app that runs wamgr: started in ``ready()``, stopped when the process exits."""

from django.apps import AppConfig
from django.conf import settings


class WhatsappConfig(AppConfig):
    """Starts wamgr once the site is loaded (see ``WAMGR_AUTOSTART`` in the settings)."""

    name = "whatsapp"

    def ready(self) -> None:
        """Route wamgr's logs into logging and start the manager (serving process only)."""
        import wamgr.logging
        from whatsapp import service

        wamgr.logging.to_stdlib(level="INFO")
        if settings.WAMGR_AUTOSTART:
            service.start()
