"""A tiny HTTP server on loopback serving media files to the outbound sender, and one small
file per media kind (imported by name, as dbproxy is)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from wamgr.transport.outgoing import MEDIA_LIMITS, MediaKind

#: One small file per media kind, with a type WhatsApp takes for it.
FILES = {
    MediaKind.IMAGE: (b"\x89PNG\r\n\x1a\n" + bytes(range(64)), "image/png"),
    MediaKind.VIDEO: (b"\x00\x00\x00\x18ftypmp42" + bytes(64), "video/mp4"),
    MediaKind.AUDIO: (b"OggS" + bytes(range(32)), "audio/ogg"),
    MediaKind.DOCUMENT: (b"%PDF-1.7\n" + bytes(range(128)), "application/pdf"),
    MediaKind.STICKER: (b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(16), "image/webp"),
}


class MediaServer:
    """A tiny HTTP server on loopback: ``/<kind>`` serves that kind's file, ``/slow`` never
    answers until the test ends, ``/huge`` says it is larger than any sticker."""

    def __init__(self) -> None:
        self.release = threading.Event()
        release = self.release

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = urlsplit(self.path).path.strip("/")
                if name == "slow":
                    release.wait(10.0)
                    return
                if name == "huge":
                    self.send_response(200)
                    self.send_header("content-type", "image/webp")
                    self.send_header(
                        "content-length", str(MEDIA_LIMITS[MediaKind.STICKER].max_bytes + 1)
                    )
                    self.end_headers()
                    return
                data, mime = FILES[MediaKind(name)]
                self.send_response(200)
                self.send_header("content-type", mime)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
