"""A small RTSP 1.0 camera for tests: real JPEG frames as RTP/JPEG (RFC 2435).

It speaks what FFmpeg's RTSP client (OpenCV's ``CAP_FFMPEG``) asks for: OPTIONS,
DESCRIBE (SDP ``m=video 0 RTP/AVP 26``), SETUP with ``RTP/AVP/TCP;interleaved=0-1`` or
``RTP/AVP/UDP;unicast;client_port=a-b``, PLAY, GET_PARAMETER / SET_PARAMETER keep-alives
and TEARDOWN, behind HTTP Basic authentication as IP cameras do.

RFC 2435 carries only baseline JPEG with two quantisation tables, the standard Huffman
tables and YUV 4:2:0 (type 1) or 4:2:2 (type 0); ``cv2.imencode`` gives exactly that by
default. The receiver rebuilds every JPEG header itself, so each frame is sent as its
entropy-coded scan only: split into RTP packets behind the 8-byte JPEG header, the first
packet also carrying both quantisation tables in-band (Q = 255: tables may change every
frame), the last one flagged with the RTP marker bit.

Interleaved frames share the control connection (``$``, channel, 16-bit length), so
responses and RTP are written under one lock; the client's RTCP reports are read and
dropped. ``stop`` closes every socket, as a rebooting camera does, and ``start`` brings
it back on the same port; ``stall`` keeps the connections but sends nothing, as a hung
encoder or a lost route does.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import random
import re
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

_PAYLOAD = 1400  # RTP payload bytes: one packet fits a 1500-byte Ethernet frame
_CLOCK = 90_000  # RTP/JPEG timestamp units per second
_TYPES = {0x21: 0, 0x22: 1}  # luma sampling factors (h << 4 | v) -> RFC 2435 type
_SOF_OTHER = {0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# Code counts per length of the Huffman tables in JPEG Annex K.3, which the receiver puts
# in every header it rebuilds (by class and id: DC luma, DC chroma, AC luma, AC chroma).
# An encoder writes either these or tables optimised per image, whose counts differ.
_STANDARD_HUFFMAN = {
    0x00: bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]),
    0x01: bytes([0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]),
    0x10: bytes([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D]),
    0x11: bytes([0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77]),
}


@dataclass(frozen=True, slots=True)
class JpegScan:
    """What RTP/JPEG sends of one baseline JPEG.

    Attributes:
        width: Pixels, a multiple of 8 up to 2040.
        height: Pixels, a multiple of 8 up to 2040.
        kind: RFC 2435 type: 0 for 4:2:2, 1 for 4:2:0.
        qtables: Luma then chroma quantisation table, 64 bytes each in zig-zag order.
        scan: Entropy-coded data between the SOS header and the EOI marker.
    """

    width: int
    height: int
    kind: int
    qtables: bytes
    scan: bytes


def parse_jpeg(jpeg: bytes) -> JpegScan:
    """Split a baseline JPEG into what RTP/JPEG carries.

    Raises:
        ValueError: The JPEG is not one RFC 2435 can carry: progressive, restart markers,
            16-bit or other than two quantisation tables, optimised Huffman tables, not
            YUV 4:2:0 or 4:2:2, or a size not a multiple of 8 up to 2040.
    """
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError(f"expected a JPEG (FF D8), got {jpeg[:2].hex()}")
    tables: dict[int, bytes] = {}
    huffman: dict[int, bytes] = {}
    size: tuple[int, int, int] | None = None
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        end = pos + 2 + int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
        body = jpeg[pos + 4 : end]
        if marker == 0xDB:
            tables.update(_quant_tables(body))
        elif marker == 0xC4:
            huffman.update(_huffman_counts(body))
        elif marker == 0xC0:
            size = _frame_header(body)
        elif marker in _SOF_OTHER or marker == 0xDD:
            raise ValueError(f"RTP/JPEG carries baseline JPEG without restarts, got FF {marker:X}")
        elif marker == 0xDA:
            if size is None or sorted(tables) != [0, 1] or huffman != _STANDARD_HUFFMAN:
                kind = "standard" if huffman == _STANDARD_HUFFMAN else "optimised"
                raise ValueError(
                    "RTP/JPEG needs SOF0, quantisation tables [0, 1] and the standard Huffman "
                    f"tables; got SOF0: {size is not None}, {sorted(tables)}, {kind}"
                )
            stop = jpeg.rindex(b"\xff\xd9")
            return JpegScan(size[0], size[1], size[2], tables[0] + tables[1], jpeg[end:stop])
        pos = end
    raise ValueError(f"JPEG segment expected at byte {pos}, got {jpeg[pos : pos + 2].hex()}")


def _quant_tables(body: bytes) -> dict[int, bytes]:
    tables = {}
    for i in range(0, len(body), 65):
        if body[i] >> 4:
            raise ValueError("RTP/JPEG carries 8-bit quantisation tables, got 16-bit")
        tables[body[i] & 0x0F] = body[i + 1 : i + 65]
    return tables


def _huffman_counts(body: bytes) -> dict[int, bytes]:
    """Class and id (``Tc << 4 | Th``) -> the 16 code counts of each table in a DHT."""
    counts = {}
    i = 0
    while i < len(body):
        counts[body[i]] = body[i + 1 : i + 17]
        i += 17 + sum(counts[body[i]])
    return counts


def _frame_header(body: bytes) -> tuple[int, int, int]:
    height, width = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big")
    components = [body[6 + 3 * c : 9 + 3 * c] for c in range(body[5])]
    sampling = [c[1] for c in components]
    if len(sampling) != 3 or sampling[0] not in _TYPES or sampling[1:] != [0x11, 0x11]:
        raise ValueError(f"RTP/JPEG carries YUV 4:2:0 or 4:2:2, got sampling {sampling}")
    if [c[2] for c in components] != [0, 1, 1]:
        raise ValueError("RTP/JPEG quantises Y with table 0 and Cb, Cr with table 1")
    if width % 8 or height % 8 or max(width, height) > 2040:
        raise ValueError(f"RTP/JPEG sizes are multiples of 8 up to 2040, got {width}x{height}")
    return width, height, _TYPES[sampling[0]]


def rtp_packets(frame: JpegScan, seq: int, timestamp: int, ssrc: int) -> list[bytes]:
    """One frame as RTP packets (payload type 26), sequence numbers from ``seq``."""
    packets: list[bytes] = []
    offset = 0
    while offset < len(frame.scan):
        head = bytes([0, *offset.to_bytes(3, "big"), frame.kind, 255])
        head += bytes([frame.width // 8, frame.height // 8])
        if offset == 0:
            head += bytes([0, 0]) + len(frame.qtables).to_bytes(2, "big") + frame.qtables
        chunk = frame.scan[offset : offset + _PAYLOAD - len(head)]
        offset += len(chunk)
        last = 0x80 if offset == len(frame.scan) else 0
        rtp = bytes([0x80, last | 26]) + ((seq + len(packets)) & 0xFFFF).to_bytes(2, "big")
        rtp += timestamp.to_bytes(4, "big") + ssrc.to_bytes(4, "big")
        packets.append(rtp + head + chunk)
    return packets


@dataclass(eq=False)
class _Session:
    """One client's stream: where its RTP goes and the thread sending it."""

    transport: str  # "tcp" or "udp"
    reply: str  # the Transport header of the SETUP response
    client: tuple[str, int] | None = None  # UDP: the client's RTP address
    udp: list[socket.socket] = field(default_factory=list)
    playing: bool = False
    ended: threading.Event = field(default_factory=threading.Event)


class RtspServer:
    """A camera at ``rtsp://127.0.0.1:<port>/cam`` looping over ``jpegs`` at ``fps``."""

    def __init__(
        self, jpegs: Sequence[bytes], fps: float = 25.0, user: str = "", password: str = ""
    ) -> None:
        """Create a stopped server; every JPEG is checked with ``parse_jpeg`` here."""
        self.frames = [parse_jpeg(j) for j in jpegs]
        self.fps = fps
        self.path = "/cam"
        self.port = 0
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._needs_auth = bool(user)
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._sending = threading.Event()
        self._sending.set()
        self.plays: list[str] = []  # transport of each PLAY, in order
        self.rejected = 0  # requests with wrong credentials
        self.frames_sent = 0

    def url(self, user: str = "", password: str = "") -> str:
        """The stream's URL, with credentials when given."""
        auth = f"{user}:{password}@" if user else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}{self.path}"

    def start(self) -> None:
        """Listen (on the same port after a ``stop``) and serve clients on threads."""
        listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR on POSIX
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Close the listener and every connection: the camera dies."""
        with self._lock:
            doomed = [self._listener, *self._sockets] if self._listener else [*self._sockets]
            self._sockets.clear()
            self._listener = None
        for sock in doomed:
            _close(sock)

    def stall(self, stalled: bool = True) -> None:
        """Stop (or resume) sending frames while every connection stays open."""
        if stalled:
            self._sending.clear()
        else:
            self._sending.set()

    # -- connections -----------------------------------------------------------------

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._listener is None:
                return False
            self._sockets.add(sock)
            return True

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            if not self._track(conn):
                _close(conn)
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        sessions: list[_Session] = []
        try:
            with contextlib.suppress(OSError):  # the client hung up, or stop() closed it
                self._converse(conn, sessions)
        finally:
            for session in sessions:
                session.ended.set()
                for sock in session.udp:
                    _close(sock)
            _close(conn)

    def _converse(self, conn: socket.socket, sessions: list[_Session]) -> None:
        """Answer requests until the client hangs up; the sessions set up go in ``sessions``."""
        send_lock = threading.Lock()
        session: _Session | None = None
        with conn.makefile("rb") as reader:
            while (request := _read_request(reader)) is not None:
                status, headers, body, session = self._answer(request, session)
                if session is not None and session not in sessions:
                    sessions.append(session)
                if session is not None and status == "200 OK":
                    headers["Session"] = f"{id(session):x};timeout=60"
                with send_lock:
                    conn.sendall(_response(request, status, headers, body))
                if session is not None and request.method == "PLAY" and status == "200 OK":
                    self._play(conn, send_lock, session)

    def _answer(
        self, req: _Request, session: _Session | None
    ) -> tuple[str, dict[str, str], bytes, _Session | None]:
        """Status, headers, body and the connection's session after ``req``."""
        if self._needs_auth and req.headers.get("authorization") != self._auth:
            if "authorization" in req.headers:
                with self._lock:
                    self.rejected += 1
            return "401 Unauthorized", {"WWW-Authenticate": 'Basic realm="varta"'}, b"", session
        if not req.path.startswith(self.path):
            return "404 Not Found", {}, b"", session
        if req.method == "OPTIONS":
            methods = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
            return "200 OK", {"Public": methods}, b"", session
        if req.method == "DESCRIBE":
            base = f"rtsp://127.0.0.1:{self.port}{self.path}/"
            headers = {"Content-Type": "application/sdp", "Content-Base": base}
            return "200 OK", headers, self._sdp(), session
        if req.method == "SETUP":
            session = _setup(req.headers.get("transport", ""))
            if session is None:
                return "461 Unsupported Transport", {}, b"", None
            return "200 OK", {"Transport": session.reply}, b"", session
        if session is None and req.method in ("PLAY", "TEARDOWN"):
            return "454 Session Not Found", {}, b"", None
        if req.method == "TEARDOWN" and session is not None:
            session.ended.set()
        if req.method in ("PLAY", "TEARDOWN", "GET_PARAMETER", "SET_PARAMETER"):
            return "200 OK", {}, b"", session
        return "501 Not Implemented", {}, b"", session

    def _sdp(self) -> bytes:
        lines = [
            "v=0",
            "o=- 1 1 IN IP4 127.0.0.1",
            "s=Varta test camera",
            "c=IN IP4 0.0.0.0",
            "t=0 0",
            "a=control:*",
            "m=video 0 RTP/AVP 26",
            "a=rtpmap:26 JPEG/90000",
            f"a=framerate:{self.fps:g}",
            "a=control:track0",
        ]
        return ("\r\n".join(lines) + "\r\n").encode()

    def _play(self, conn: socket.socket, send_lock: threading.Lock, session: _Session) -> None:
        if not session.playing:
            session.playing = True
            args = (conn, send_lock, session)
            threading.Thread(target=self._stream, args=args, daemon=True).start()
            with self._lock:
                self.plays.append(session.transport)

    def _stream(self, conn: socket.socket, send_lock: threading.Lock, session: _Session) -> None:
        """Send frames at ``fps`` until the session ends (stalled: send nothing)."""
        seq, ssrc, ts0 = random.getrandbits(16), random.getrandbits(32), random.getrandbits(32)
        began = time.monotonic()
        for n in itertools.count():
            if session.ended.wait(max(0.0, began + n / self.fps - time.monotonic())):
                return
            if not self._sending.is_set():
                continue
            timestamp = (ts0 + round(n * _CLOCK / self.fps)) & 0xFFFFFFFF
            packets = rtp_packets(self.frames[n % len(self.frames)], seq, timestamp, ssrc)
            seq = (seq + len(packets)) & 0xFFFF
            try:
                if session.client is None:
                    data = b"".join(b"$\x00" + len(p).to_bytes(2, "big") + p for p in packets)
                    with send_lock:
                        conn.sendall(data)
                else:
                    for p in packets:
                        session.udp[0].sendto(p, session.client)
            except OSError:
                session.ended.set()
                return
            with self._lock:
                self.frames_sent += 1


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names


def _read_request(reader: BinaryIO) -> _Request | None:
    """The next RTSP request, skipping interleaved RTCP; None at end of stream."""
    while (first := reader.read(1)) == b"$":  # an interleaved frame: the client's RTCP
        head = reader.read(3)
        if len(head) < 3:
            return None
        reader.read(int.from_bytes(head[1:], "big"))
    if not first:
        return None
    line = (first + reader.readline()).decode("latin-1").strip()
    headers = {}
    while (header := reader.readline().decode("latin-1").strip()) != "":
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    reader.read(int(headers.get("content-length", "0")))
    method, _, rest = line.partition(" ")
    path = re.sub(r"^rtsp://[^/]*", "", rest.partition(" ")[0]) or "/"
    return _Request(method, path, headers)


def _setup(transport: str) -> _Session | None:
    """The session a SETUP's Transport header asks for; None when not offered."""
    spec = transport.partition(",")[0]
    if spec.startswith("RTP/AVP/TCP"):
        return _Session("tcp", "RTP/AVP/TCP;unicast;interleaved=0-1")
    ports = re.search(r"client_port=(\d+)-(\d+)", spec)
    if not spec.startswith("RTP/AVP") or ports is None:
        return None
    rtp, rtcp = _udp_pair()
    own = rtp.getsockname()[1]
    reply = f"RTP/AVP/UDP;unicast;client_port={ports[1]}-{ports[2]};server_port={own}-{own + 1}"
    return _Session("udp", reply, ("127.0.0.1", int(ports[1])), [rtp, rtcp])


def _udp_pair() -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets on consecutive ports (RTP, RTCP), as RFC 3550 wants."""
    for _ in range(50):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtcp.bind(("127.0.0.1", rtp.getsockname()[1] + 1))
        except OSError:
            rtp.close()
            rtcp.close()
            continue
        return rtp, rtcp
    raise OSError("no two consecutive free UDP ports on 127.0.0.1")


def _response(req: _Request, status: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"RTSP/1.0 {status}", f"CSeq: {req.headers.get('cseq', '0')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected (a listener), or closed already
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked on it; sends FIN
    sock.close()
