"""The routes of the HTTP API, one router per resource; :mod:`wamgr.api.app` mounts them.

Routes are plain (sync) functions: FastAPI runs them on its thread pool, where blocking on
the manager (every call bounded by ``call_timeout``) is fine. They raise wamgr's named errors
and leave the HTTP status to the app's one error mapping.
"""
