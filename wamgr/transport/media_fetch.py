"""Media given by URL: checked when it is queued, fetched by the instance that sends it.

An application may give a media message's file as an ``http(s)`` URL instead of bytes
(:class:`MediaUrl`). :func:`check_media_url` refuses, before anything is queued, what can be
known wrong without the file (the URL, the recipient, caption, filename, a mime type the
kind does not take): MediaRefused, 422 over HTTP. The queue stores the URL
(:func:`url_payload`), not the file; the instance holding the tenant fetches it when the
message's turn comes (:class:`MediaFetcher`), with the kind's size limit
(:data:`~wamgr.transport.outgoing.MEDIA_LIMITS`) and a timeout, so the file travels once.
A URL that fails (timeout, too large, an HTTP error, a type WhatsApp refuses) ends the
message ``failed`` with the reason; it was surely not sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from wamgr.errors import MediaRefused, MediaTooLarge, WamgrError, _one_line
from wamgr.tls import default_tls
from wamgr.transport.outgoing import (
    MEDIA_LIMITS,
    MediaKind,
    MediaOut,
    Outgoing,
    check_outgoing,
    from_payload,
)

#: Longest media URL, in characters.
URL_CHARS_MAX = 2048
#: Bytes read from the response at a time.
CHUNK_BYTES = 64 * 1024
#: The mime type of a document whose URL names none.
DEFAULT_DOCUMENT_MIME = "application/octet-stream"


class MediaFetchFailed(WamgrError):
    """The file of a media message given by URL could not be fetched (timeout, HTTP error,
    connection refused...). ``url`` is shown without its query (it may hold a token)."""

    exit_code = 1
    http_status = 502

    def __init__(self, url: str, why: str):
        self.url = shown_url(url)
        self.why = _one_line(why)
        super().__init__(f"could not fetch the media at {self.url}: {self.why}")


@dataclass(frozen=True, slots=True)
class MediaUrl:
    """A media message whose file is at ``url``; ``mime`` None: the response's type."""

    to: str
    media: MediaKind
    url: str = field(repr=False)  # may hold a token
    mime: str | None = None
    caption: str | None = field(default=None, repr=False)
    filename: str | None = None
    quoted_id: str | None = None
    voice: bool = False


def shown_url(url: str) -> str:
    """``url`` as it may be logged and shown: scheme, host and path, no credentials or query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"[:200]


def check_media_url(message: MediaUrl) -> MediaUrl:
    """``message`` normalised if all but its file is what WhatsApp takes; else MediaRefused
    (``url``: not an absolute http(s) URL) or InvalidRecipient."""
    url = message.url
    parts = urlsplit(url) if isinstance(url, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(url) > URL_CHARS_MAX
        or not url.isprintable()
        or " " in url
    ):
        raise MediaRefused(
            "url", f"an absolute http:// or https:// URL of at most {URL_CHARS_MAX} characters"
        )
    kind = MediaKind(message.media)
    # Every check but the file's: a one-byte stand-in of an accepted type takes its place.
    stand_in = message.mime or min(MEDIA_LIMITS[kind].mimes or {DEFAULT_DOCUMENT_MIME})
    checked = check_outgoing(
        MediaOut(message.to, kind, b"\0", stand_in, message.caption, message.filename,
                 message.quoted_id, message.voice)
    )  # fmt: skip
    assert isinstance(checked, MediaOut)
    mime = checked.mime if message.mime else None
    return MediaUrl(
        checked.to, kind, url, mime, checked.caption, checked.filename, checked.quoted_id,
        checked.voice,
    )  # fmt: skip


def url_payload(message: MediaUrl) -> tuple[str, dict[str, Any]]:
    """The queue's ``(kind, payload)`` of a checked :class:`MediaUrl`."""
    return str(message.media), {
        "to": message.to,
        "url": message.url,
        "mime": message.mime,
        "caption": message.caption,
        "filename": message.filename,
        "quoted_id": message.quoted_id,
        "voice": message.voice,
    }


class MediaFetcher:
    """Turns queue rows into messages to send, fetching a URL's file first (at most
    ``timeout_s`` seconds for the whole response)."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s

    def outgoing(self, kind: str, payload: dict[str, Any], media: bytes | None = None) -> Outgoing:
        """The message of a queue row (``media``: its file, kept apart from the payload). For
        a file given by URL: fetched and checked, or MediaFetchFailed / MediaTooLarge /
        MediaRefused (the message cannot be sent)."""
        if media is not None:  # the file is given: no base64 round trip
            message = from_payload(kind, payload | {"data_b64": ""})
            return replace(message, data=media) if isinstance(message, MediaOut) else message
        if "url" not in payload:
            return from_payload(kind, payload)
        media = MediaKind(kind)
        url = str(payload["url"])
        data, content_type = self.fetch(url, media)
        mime = payload.get("mime") or content_type
        if not mime and media is MediaKind.DOCUMENT:
            mime = DEFAULT_DOCUMENT_MIME
        if not mime:
            raise MediaFetchFailed(url, f"the response names no type for the {media}: give mime")
        return check_outgoing(
            MediaOut(payload["to"], media, data, mime, payload.get("caption"),
                     payload.get("filename"), payload.get("quoted_id"), bool(payload.get("voice")))
        )  # fmt: skip

    def fetch(self, url: str, media: MediaKind) -> tuple[bytes, str | None]:
        """The file at ``url`` and the type its response names; MediaTooLarge as soon as it
        is over ``media``'s limit, MediaFetchFailed on a timeout or any HTTP failure."""
        limit = MEDIA_LIMITS[media].max_bytes
        end = time.monotonic() + self.timeout_s
        try:
            with httpx.stream(
                "GET", url, timeout=self.timeout_s, follow_redirects=True, verify=default_tls()
            ) as resp:
                if resp.status_code != 200:
                    raise MediaFetchFailed(url, f"HTTP {resp.status_code}")
                length = resp.headers.get("content-length", "")
                if length.isdigit() and int(length) > limit:
                    raise MediaTooLarge(str(media), int(length), limit)
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_bytes(CHUNK_BYTES):
                    size += len(chunk)
                    if size > limit:
                        raise MediaTooLarge(str(media), size, limit)
                    if time.monotonic() > end:
                        raise httpx.ReadTimeout("the whole response took too long")
                    chunks.append(chunk)
                content_type = resp.headers.get("content-type")
        except httpx.TimeoutException:
            raise MediaFetchFailed(url, f"timed out after {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise MediaFetchFailed(url, f"{type(exc).__name__}: {exc}") from None
        mime = content_type.split(";")[0].strip().lower() if content_type else None
        return b"".join(chunks), mime
