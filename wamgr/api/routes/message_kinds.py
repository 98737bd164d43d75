"""Every other kind of message a tenant sends, through the durable outbound queue: media
(image, video, audio / voice note, document, sticker) from an upload or a URL, reactions,
read receipts and presence. Each answers 202 with the queued message (as ``POST
.../messages``), honours ``Idempotency-Key``, and refuses with 422 before queueing what
WhatsApp would refuse (MediaTooLarge, MediaRefused, InvalidRecipient).

A media upload is ``multipart/form-data`` (its body may be as large as ``max_media_bytes``;
every other body is bounded by ``max_body_bytes``). A file given by ``url`` is fetched by
the instance that sends it, when its turn comes, within ``media_fetch_timeout``; a URL that
fails ends the message ``failed`` with the reason.
"""

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, UploadFile

from wamgr.api.dependencies import KnownTenant, Manager
from wamgr.api.schemas import MessageOut, PresenceIn, ReactionIn, ReadIn, message_out
from wamgr.config_checks import YEAR_S
from wamgr.errors import MediaRefused, MediaTooLarge
from wamgr.transport.media_fetch import DEFAULT_DOCUMENT_MIME, MediaUrl
from wamgr.transport.outgoing import (
    MEDIA_LIMITS,
    MediaKind,
    MediaOut,
    Outgoing,
    PresenceOut,
    ReactionOut,
    ReadOut,
)

router = APIRouter(prefix="/tenants", tags=["messages"])

IdempotencyKey = Annotated[
    str | None,
    Header(description="The same key for the same tenant returns the first message"),
]


@router.post("/{tenant_id}/messages/media", response_model=MessageOut, status_code=202)
def send_media(
    tenant: KnownTenant,
    mgr: Manager,
    to: Annotated[str, Form(description="A phone number or WhatsApp JID")],
    kind: Annotated[MediaKind, Form(description="image, video, audio, document or sticker")],
    file: Annotated[UploadFile | None, File(description="The file (or give url)")] = None,
    url: Annotated[
        str | None, Form(description="http(s) URL the sender fetches the file from")
    ] = None,
    mime: Annotated[
        str | None, Form(description="Its type (default: the upload's or the URL's)")
    ] = None,
    caption: Annotated[str | None, Form(description="image, video, document")] = None,
    filename: Annotated[str | None, Form(description="A document's shown name")] = None,
    quoted_id: Annotated[str | None, Form(description="Reply to this message")] = None,
    voice: Annotated[bool, Form(description="audio: send as a voice note")] = False,
    expires_in: Annotated[float | None, Form(ge=1, le=YEAR_S)] = None,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Queue a media message from an uploaded ``file`` or a ``url`` (exactly one); 422
    MediaTooLarge over WhatsApp's limit for its kind, MediaRefused for a type it does not
    take or a field the kind has not (a sticker's caption...)."""
    if (file is None) == (url is None):
        raise MediaRefused("file", "give the file as an upload or as a url: exactly one")
    message: MediaOut | MediaUrl
    if url is not None:
        message = MediaUrl(to, kind, url, mime, caption, filename, quoted_id, voice)
    else:
        assert file is not None
        limit = MEDIA_LIMITS[kind].max_bytes
        data = file.file.read(limit + 1)
        if len(data) > limit:
            raise MediaTooLarge(str(kind), file.size or len(data), limit)
        if filename is None and kind is MediaKind.DOCUMENT:
            filename = file.filename
        given = mime or file.content_type or ""
        if not given and kind is MediaKind.DOCUMENT:
            given = DEFAULT_DOCUMENT_MIME
        message = MediaOut(to, kind, data, given, caption, filename, quoted_id, voice)
    return _queued(mgr, tenant.tenant_id, message, idempotency_key, expires_in)


@router.post("/{tenant_id}/messages/reaction", response_model=MessageOut, status_code=202)
def send_reaction(
    tenant: KnownTenant, body: ReactionIn, mgr: Manager, idempotency_key: IdempotencyKey = None
) -> Any:
    """Queue a reaction to message ``message_id`` (``"emoji": ""`` removes it)."""
    reaction = ReactionOut(body.to, body.message_id, body.emoji, body.sender)
    return _queued(mgr, tenant.tenant_id, reaction, idempotency_key, body.expires_in)


@router.post("/{tenant_id}/messages/read", response_model=MessageOut, status_code=202)
def mark_read(
    tenant: KnownTenant, body: ReadIn, mgr: Manager, idempotency_key: IdempotencyKey = None
) -> Any:
    """Queue a read receipt for ``message_ids`` in chat ``to`` (the sender sees blue ticks)."""
    read = ReadOut(body.to, tuple(body.message_ids), body.sender)
    return _queued(mgr, tenant.tenant_id, read, idempotency_key, body.expires_in)


@router.post("/{tenant_id}/messages/presence", response_model=MessageOut, status_code=202)
def send_presence(
    tenant: KnownTenant, body: PresenceIn, mgr: Manager, idempotency_key: IdempotencyKey = None
) -> Any:
    """Queue a presence: available / unavailable, or typing / recording / paused in ``to``."""
    presence = PresenceOut(body.presence, body.to)
    return _queued(mgr, tenant.tenant_id, presence, idempotency_key, body.expires_in)


def _queued(
    mgr: Manager,
    tenant_id: str,
    message: Outgoing | MediaUrl,
    idempotency_key: str | None,
    expires_in: float | None,
) -> dict[str, Any]:
    queued = mgr.send_message(
        tenant_id, message, idempotency_key=idempotency_key, expires_in=expires_in
    )
    return message_out(queued)
