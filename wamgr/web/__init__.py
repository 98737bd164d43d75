"""The operator dashboard: live tenant states, pairing on screen, actions and history.

Served by the HTTP API's app at ``/dashboard`` (see :func:`~wamgr.web.mount.mount_dashboard`),
from server-rendered pages (:mod:`.pages`, templates in ``templates/``) and one small script
of its own (``static/dashboard.js``), with no build step and nothing from a CDN:

- :mod:`.session` signs in with the API key (a signed, expiring cookie) and guards forms
  against cross-site requests;
- :mod:`.live` pushes the status changes of every instance to open pages (Server-Sent
  Events fed by the runtime's status feed);
- :mod:`.actions` runs what the buttons ask; :mod:`.views` renders.
"""
