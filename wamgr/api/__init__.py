"""The HTTP API: FastAPI routes over the ConnectionManager, served by uvicorn on a thread.

- :mod:`.app` builds the application (``create_app``): the key check, the one mapping of
  errors to HTTP statuses, the routers.
- :mod:`.routes` holds one router per resource (tenants, pairing, messages, locks, health).
- :mod:`.dependencies` gives routes the manager, a validated and known tenant, the key check.
- :mod:`.schemas` holds the request and response bodies.
- :mod:`.server` runs the app on a named thread (``wamgr serve``).
"""
