"""Binary wire format of SDN-CEP frames (TASK, RESULT, ERROR).

A frame is::

    +----------------------+  HEADER (fixed, 108 bytes, network byte order)
    | magic "SCEP", ver, type, flags, task id (16 B), model (24 B, NUL padded),
    | cut, hop index, hop count, dtype, ndim, top-k, shape (8 x u32),
    | payload length (u64), plan/stamps/extra section lengths (u16),
    | CRC32 over the header (minus this field) and the three sections
    +----------------------+
    | PLAN section          reply-to (host, port) + every hop (host, port, start, end)
    | STAMPS section        one 62-byte record per stage already done
    | EXTRA section         RESULT: top-k table; ERROR: code + message; TASK: empty
    +----------------------+
    | PAYLOAD               raw little-endian tensor bytes (C order), ``payload_len``
    +----------------------+

Everything is struct-encoded (no JSON, never pickle).  :func:`read_frame` reads the
header, validates every field against :class:`Limits` (and an optional model
allow-list) *before* allocating the payload, then reads the payload with
``recv_into`` into one preallocated ``bytearray`` and exposes it zero-copy as numpy /
torch.  Any violation raises :class:`FrameError` with a short machine-readable
``reason``.
"""
from __future__ import annotations

import dataclasses
import math
import re
import select
import socket
import struct
import time
import uuid
import zlib
from typing import Callable, Iterable, Sequence

import numpy as np

MAGIC = b"SCEP"
VERSION = 1

TASK = 1
RESULT = 2
ERROR = 3
MSG_NAMES = {TASK: "TASK", RESULT: "RESULT", ERROR: "ERROR"}

FLAG_WANT_LOGITS = 0x0001  # TASK: the RESULT should carry the final output tensor
KNOWN_FLAGS = FLAG_WANT_LOGITS

MAX_NDIM = 8
MODEL_FIELD = 24
NAME_FIELD = 16
NO_HOP = 255  # hop index used in stamps written by the requester

# dtype code <-> numpy dtype (payload is always little-endian)
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),
    2: np.dtype("<f2"),
    3: np.dtype("u1"),
    4: np.dtype("i1"),
    5: np.dtype("<i2"),
    6: np.dtype("<i4"),
    7: np.dtype("<i8"),
    8: np.dtype("<f8"),
}
DTYPE_CODES: dict[str, int] = {dt.name: code for code, dt in DTYPES.items()}
NO_TENSOR = 0  # dtype code of a frame without tensor (ndim 0, payload 0)

# magic, version, type, flags, task_id, model, cut, hop_index, n_hops, dtype, ndim,
# topk, reserved, shape[8], payload_len, plan_len, stamps_len, extra_len, reserved, crc
_HEADER = struct.Struct("!4sBBH16s24sHBBBBBx8IQHHHxxI")
HEADER_SIZE = _HEADER.size
_CRC_OFFSET = HEADER_SIZE - 4

_STAGE = struct.Struct("!16sBxHH5d")
STAGE_SIZE = _STAGE.size
_HOP_TAIL = struct.Struct("!HHH")
_PORT = struct.Struct("!H")
_TOPK_HEAD = struct.Struct("!BB")
_TOPK_ITEM = struct.Struct("!If")
_ERR_HEAD = struct.Struct("!BH")

_MODEL_RE = re.compile(rb"^[a-z0-9_]{1,24}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9.:_\-]{1,64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9._\-]{0,16}$")
_CODE_RE = re.compile(r"^[a-z0-9_]{1,32}$")


class FrameError(Exception):
    """A frame was malformed, over a limit, truncated or timed out.

    ``reason`` is a short code (``bad_magic``, ``truncated``, ``payload_too_large``...).
    When the header and plan had already been decoded (e.g. ``unknown_model``) the
    error carries ``task_id``, ``reply_to``, ``hops``, ``stamps`` and ``model`` so a
    worker can still send an ERROR frame to the requester.
    """

    def __init__(self, reason: str, detail: str = "", **context):
        self.reason = reason
        self.detail = detail
        self.task_id: bytes | None = context.get("task_id")
        self.reply_to: tuple[str, int] | None = context.get("reply_to")
        self.hops: tuple = context.get("hops", ())
        self.hop_index: int = context.get("hop_index", 0)
        self.stamps: tuple = context.get("stamps", ())
        self.model: str = context.get("model", "")
        self.cut: int = context.get("cut", 0)
        # payload bytes still unread when the frame itself was well formed: skipping them
        # (skip_payload) keeps the connection usable; None means "close the connection"
        self.unread: int | None = context.get("unread")
        super().__init__(f"{reason}: {detail}" if detail else reason)


class FrameTimeout(FrameError):
    """No complete frame within the allowed time (idle or per-frame deadline)."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """Hard bounds enforced by :func:`read_frame` (and :func:`encode_parts`)."""

    max_payload: int = 64 * 1024 * 1024
    """Largest tensor payload in bytes (64 MiB)."""
    max_ndim: int = MAX_NDIM
    """Largest number of tensor dimensions (at most 8, the header has 8 slots)."""
    max_hops: int = 8
    """Largest number of hops in a plan."""
    max_plan_bytes: int = 2048
    """Largest PLAN section."""
    max_extra_bytes: int = 4096
    """Largest EXTRA section (top-k table or error text)."""
    io_timeout: float = 30.0
    """Seconds a single recv may block once a frame has started."""
    frame_timeout: float = 120.0
    """Seconds a whole frame may take once its first byte arrived (slowloris bound)."""

    @property
    def max_stamps_bytes(self) -> int:
        return (self.max_hops + 1) * STAGE_SIZE


DEFAULT_LIMITS = Limits()


@dataclasses.dataclass(frozen=True)
class Hop:
    """One worker of a plan: ``host:port`` runs partition points ``start``..``end``
    (the one hop type: frames carry it, protocol.task_plan.WirePlan holds it)."""

    host: str
    port: int
    start: int
    end: int

    @property
    def addr(self) -> tuple[str, int]:
        return (self.host, self.port)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}:{self.start}-{self.end}"


@dataclasses.dataclass(frozen=True)
class Stage:
    """Timestamps (``time.time()`` seconds) of one stage of a task.

    The requester writes a stage named ``client`` (hop ``NO_HOP``) with only
    ``send_start``.  Each worker appends one stage: receive start/end (first header
    byte .. last payload byte), compute start/end (queue wait = compute_start -
    recv_end) and send start (just before the outgoing frame is written).
    """

    name: str
    hop: int
    start: int
    end: int
    recv_start: float = 0.0
    recv_end: float = 0.0
    compute_start: float = 0.0
    compute_end: float = 0.0
    send_start: float = 0.0


@dataclasses.dataclass(frozen=True)
class TopK:
    """Top-k classes of one batch element, best first."""

    classes: tuple[int, ...]
    scores: tuple[float, ...]


@dataclasses.dataclass
class Frame:
    """A decoded (or to-be-encoded) frame.

    ``payload`` is a bytes-like object holding the raw tensor (empty when ``dtype`` is
    ``NO_TENSOR``).  ``recv_start``/``recv_end`` are local receive times filled in by
    :func:`read_frame`; they are not part of the wire format.
    """

    msg_type: int
    task_id: bytes
    model: str
    cut: int
    hop_index: int
    hops: tuple[Hop, ...]
    reply_to: tuple[str, int]
    stamps: tuple[Stage, ...] = ()
    dtype: int = NO_TENSOR
    shape: tuple[int, ...] = ()
    payload: bytes | bytearray | memoryview = b""
    flags: int = 0
    topk: int = 1
    results: tuple[TopK, ...] = ()
    error_code: str = ""
    error_message: str = ""
    recv_start: float = 0.0
    recv_end: float = 0.0

    def array(self) -> np.ndarray:
        """The payload as a numpy array (zero-copy view of the receive buffer)."""
        if self.dtype == NO_TENSOR:
            raise ValueError("frame carries no tensor")
        return np.frombuffer(self.payload, dtype=DTYPES[self.dtype]).reshape(self.shape)

    def tensor(self):
        """The payload as a torch tensor sharing memory with the receive buffer."""
        import torch

        arr = self.array()
        if not arr.flags.writeable:  # bytes payload: torch wants a writable buffer
            arr = arr.copy()
        return torch.from_numpy(arr)

    @property
    def hop(self) -> Hop:
        return self.hops[self.hop_index]


def new_task_id() -> bytes:
    return uuid.uuid4().bytes


# --------------------------------------------------------------------------- encode


def _tensor_view(tensor) -> tuple[int, tuple[int, ...], memoryview]:
    """(dtype code, shape, byte view) of a numpy array or torch tensor, no copy if C-contiguous."""
    if tensor is None:
        return NO_TENSOR, (), memoryview(b"")
    if hasattr(tensor, "detach"):  # torch.Tensor
        tensor = tensor.detach().cpu().contiguous().numpy()
    arr = np.ascontiguousarray(tensor)
    dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    code = DTYPE_CODES.get(np.dtype(dt).name)
    if code is None:
        raise ValueError(f"unsupported dtype {arr.dtype}")
    if arr.dtype.byteorder == ">":
        arr = arr.astype(dt)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    return code, tuple(int(s) for s in arr.shape), memoryview(arr).cast("B")


def _enc_host(host: str) -> bytes:
    if not isinstance(host, str) or not _HOST_RE.match(host):
        raise ValueError(f"bad host {host!r}")
    raw = host.encode("ascii")
    return bytes([len(raw)]) + raw


def _enc_plan(reply_to: tuple[str, int], hops: Sequence[Hop]) -> bytes:
    out = [_enc_host(reply_to[0]), _PORT.pack(int(reply_to[1]))]
    for h in hops:
        out.append(_enc_host(h.host))
        out.append(_HOP_TAIL.pack(int(h.port), int(h.start), int(h.end)))
    return b"".join(out)


def _enc_stamps(stamps: Sequence[Stage]) -> bytes:
    out = []
    for s in stamps:
        name = s.name.encode("ascii", "replace")[:NAME_FIELD]
        out.append(_STAGE.pack(name, s.hop, s.start, s.end, s.recv_start, s.recv_end,
                               s.compute_start, s.compute_end, s.send_start))
    return b"".join(out)


def _enc_extra(frame: Frame) -> bytes:
    if frame.msg_type == RESULT:
        if not frame.results:
            return b""
        k = len(frame.results[0].classes)
        out = [_TOPK_HEAD.pack(len(frame.results), k)]
        for r in frame.results:
            if len(r.classes) != k or len(r.scores) != k:
                raise ValueError("all top-k rows must have the same k")
            for c, s in zip(r.classes, r.scores):
                out.append(_TOPK_ITEM.pack(int(c), float(s)))
        return b"".join(out)
    if frame.msg_type == ERROR:
        code = frame.error_code.encode("ascii", "replace")[:32] or b"error"
        msg = frame.error_message.encode("utf-8", "replace")[:1024]
        return _ERR_HEAD.pack(len(code), len(msg)) + code + msg
    return b""


def encode_parts(frame: Frame, tensor=None, limits: Limits = DEFAULT_LIMITS) -> list:
    """Encode ``frame`` as ``[header+sections, payload view]`` (payload not copied).

    ``tensor`` (numpy array or torch tensor) overrides ``frame.payload``/``dtype``/``shape``.
    """
    if tensor is not None:
        dtype, shape, payload = _tensor_view(tensor)
    else:
        dtype, shape = frame.dtype, tuple(frame.shape)
        payload = memoryview(frame.payload).cast("B")
        if dtype != NO_TENSOR:
            expect = math.prod(shape) * DTYPES[dtype].itemsize
            if expect != payload.nbytes:
                raise ValueError(f"payload is {payload.nbytes} bytes, shape needs {expect}")
    if dtype == NO_TENSOR and (shape or payload.nbytes):
        raise ValueError("frame without dtype must have no shape and no payload")
    if len(shape) > limits.max_ndim:
        raise ValueError(f"ndim {len(shape)} > {limits.max_ndim}")
    if payload.nbytes > limits.max_payload:
        raise ValueError(f"payload {payload.nbytes} > {limits.max_payload}")
    if len(frame.hops) > limits.max_hops:
        raise ValueError(f"{len(frame.hops)} hops > {limits.max_hops}")
    model = frame.model.encode("ascii")
    if not _MODEL_RE.match(model):
        raise ValueError(f"bad model name {frame.model!r}")
    if len(frame.task_id) != 16:
        raise ValueError("task id must be 16 bytes")
    plan = _enc_plan(frame.reply_to, frame.hops)
    stamps = _enc_stamps(frame.stamps)
    extra = _enc_extra(frame)
    if len(plan) > limits.max_plan_bytes:
        raise ValueError("plan section too large")
    if len(stamps) > limits.max_stamps_bytes:
        raise ValueError("too many stamps")
    if len(extra) > limits.max_extra_bytes:
        raise ValueError("extra section too large")
    dims = list(shape) + [0] * (MAX_NDIM - len(shape))
    head = _HEADER.pack(MAGIC, VERSION, frame.msg_type, frame.flags, frame.task_id, model,
                        frame.cut, frame.hop_index, len(frame.hops), dtype, len(shape),
                        frame.topk, *dims, payload.nbytes, len(plan), len(stamps),
                        len(extra), 0)
    sections = plan + stamps + extra
    crc = zlib.crc32(sections, zlib.crc32(head[:_CRC_OFFSET]))
    return [head[:_CRC_OFFSET] + struct.pack("!I", crc) + sections, payload]


def encode(frame: Frame, tensor=None, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Encode ``frame`` (and optional ``tensor``) into one ``bytes`` object."""
    head, payload = encode_parts(frame, tensor, limits)
    return head + bytes(payload)


STALL_CHUNK = 1 << 18


class SendStalled(OSError):
    """No byte of a frame could be written for ``stall_timeout`` seconds."""


def send_frame(sock: socket.socket, frame: Frame, tensor=None,
               limits: Limits = DEFAULT_LIMITS, stall_timeout: float | None = None) -> int:
    """Write one frame on a connected socket; returns the bytes written.

    Uses two ``sendall`` calls (small header block, then the payload view) so the
    tensor is never copied in Python.  Call :func:`tune_socket` on the socket first.
    With ``stall_timeout`` the frame may take as long as it needs while it moves,
    but fails with :class:`SendStalled` once no byte has left for that long (a link
    down under the connection: the sender then tries elsewhere instead of waiting
    out its total timeout). The connection is unusable after a failed send.
    """
    head, payload = encode_parts(frame, tensor, limits)
    if stall_timeout is not None:
        return _send_progressing(sock, head, payload, stall_timeout)
    if payload.nbytes and payload.nbytes < 65536:
        sock.sendall(head + bytes(payload))  # one segment for small frames
    else:
        sock.sendall(head)
        if payload.nbytes:
            sock.sendall(payload)
    return len(head) + payload.nbytes


def _send_progressing(sock, head, payload, stall_timeout):
    previous = sock.gettimeout()
    sock.settimeout(stall_timeout)     # each send() returns once some bytes went out
    try:
        for part in (memoryview(head), payload):
            offset = 0
            while offset < part.nbytes:
                try:
                    offset += sock.send(part[offset:offset + STALL_CHUNK])
                except socket.timeout:
                    raise SendStalled(f"send stalled: no progress for {stall_timeout:.1f} s") from None
    finally:
        sock.settimeout(previous)
    return len(head) + payload.nbytes


def peer_closed(sock: socket.socket) -> bool:
    """True if a pooled (write-only) connection was closed or reset by the peer.

    Checked before reusing a connection: a write to a socket whose peer already closed
    would succeed locally and the frame would be lost.
    """
    try:
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except (OSError, ValueError):
        return True


# struct tcp_info (linux/tcp.h): eight one-byte fields, then 32-bit ones; tcpi_total_retrans
# is the 24th of those
_TCP_INFO_TOTAL_RETRANS = struct.Struct("=I")
_TCP_INFO_TOTAL_RETRANS_AT = 8 + 23 * 4


def total_retransmissions(sock: socket.socket) -> int | None:
    """Segments the kernel has retransmitted on this TCP connection (None where the
    platform does not say)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_TOTAL_RETRANS_AT + 4)
    except (OSError, AttributeError):
        return None
    if len(info) < _TCP_INFO_TOTAL_RETRANS_AT + 4:
        return None
    return _TCP_INFO_TOTAL_RETRANS.unpack_from(info, _TCP_INFO_TOTAL_RETRANS_AT)[0]


def tune_socket(sock: socket.socket) -> None:
    """TCP_NODELAY (no Nagle delay on the small header / small results)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


# --------------------------------------------------------------------------- decode


class _Reader:
    """Exact reads from a socket (``recv_into``) or binary stream (``readinto``)."""

    def __init__(self, src, limits: Limits, idle_timeout: float | None):
        self.src = src
        self.limits = limits
        self.is_sock = isinstance(src, socket.socket)
        self.idle_timeout = limits.io_timeout if idle_timeout is None else idle_timeout
        self.deadline: float | None = None
        self.first_byte_at = 0.0

    def _recv_into(self, mv: memoryview, first: bool) -> int:
        if not self.is_sock:
            return self.src.readinto(mv) or 0
        if first:
            timeout = self.idle_timeout
        else:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise FrameTimeout("timeout", "frame deadline exceeded")
            timeout = min(self.limits.io_timeout, remaining)
        self.src.settimeout(timeout)
        try:
            return self.src.recv_into(mv)
        except (socket.timeout, TimeoutError):
            raise FrameTimeout("timeout", "idle" if first else "recv timed out") from None
        except (ConnectionError, OSError) as e:
            raise FrameError("connection", str(e)) from None

    def read_into(self, buf, what: str, allow_eof: bool = False) -> bool:
        mv = memoryview(buf).cast("B")
        got = 0
        while got < mv.nbytes:
            first = self.deadline is None
            n = self._recv_into(mv[got:], first)
            if n == 0:
                if allow_eof and got == 0 and first:
                    return False
                raise FrameError("truncated", f"{what}: got {got} of {mv.nbytes} bytes")
            if first:
                self.first_byte_at = time.time()
                self.deadline = time.monotonic() + self.limits.frame_timeout
            got += n
        return True


def _dec_host(buf: bytes, off: int) -> tuple[str, int]:
    if off >= len(buf):
        raise FrameError("bad_plan", "host length missing")
    n = buf[off]
    raw = buf[off + 1: off + 1 + n]
    if len(raw) != n:
        raise FrameError("bad_plan", "host truncated")
    host = raw.decode("ascii", "replace")
    if not _HOST_RE.match(host):
        raise FrameError("bad_plan", f"bad host {host!r}")
    return host, off + 1 + n


def _dec_plan(buf: bytes, n_hops: int) -> tuple[tuple[str, int], tuple[Hop, ...]]:
    host, off = _dec_host(buf, 0)
    if off + 2 > len(buf):
        raise FrameError("bad_plan", "reply port missing")
    (port,) = _PORT.unpack_from(buf, off)
    off += 2
    hops = []
    for _ in range(n_hops):
        h, off = _dec_host(buf, off)
        if off + _HOP_TAIL.size > len(buf):
            raise FrameError("bad_plan", "hop truncated")
        p, s, e = _HOP_TAIL.unpack_from(buf, off)
        off += _HOP_TAIL.size
        if not (0 <= s < e):
            raise FrameError("bad_plan", f"hop range {s}..{e}")
        if hops and hops[-1].end != s:
            raise FrameError("bad_plan", "hops not contiguous")
        hops.append(Hop(h, p, s, e))
    if off != len(buf):
        raise FrameError("bad_plan", "trailing bytes in plan")
    return (host, port), tuple(hops)


def _dec_stamps(buf: bytes) -> tuple[Stage, ...]:
    if len(buf) % STAGE_SIZE:
        raise FrameError("bad_stamps", "length not a multiple of the record size")
    out = []
    for off in range(0, len(buf), STAGE_SIZE):
        name, hop, s, e, *t = _STAGE.unpack_from(buf, off)
        if not all(math.isfinite(x) for x in t):
            raise FrameError("bad_stamps", "non-finite timestamp")
        out.append(Stage(name.rstrip(b"\0").decode("ascii", "replace"), hop, s, e, *t))
    return tuple(out)


def _dec_extra(msg_type: int, buf: bytes) -> tuple[tuple[TopK, ...], str, str]:
    if not buf:
        return (), "", ""
    if msg_type == RESULT:
        if len(buf) < _TOPK_HEAD.size:
            raise FrameError("bad_extra", "top-k header truncated")
        rows, k = _TOPK_HEAD.unpack_from(buf, 0)
        if len(buf) != _TOPK_HEAD.size + rows * k * _TOPK_ITEM.size:
            raise FrameError("bad_extra", "top-k table length mismatch")
        res, off = [], _TOPK_HEAD.size
        for _ in range(rows):
            items = [_TOPK_ITEM.unpack_from(buf, off + i * _TOPK_ITEM.size) for i in range(k)]
            off += k * _TOPK_ITEM.size
            res.append(TopK(tuple(c for c, _ in items), tuple(s for _, s in items)))
        return tuple(res), "", ""
    if msg_type == ERROR:
        if len(buf) < _ERR_HEAD.size:
            raise FrameError("bad_extra", "error header truncated")
        nc, nm = _ERR_HEAD.unpack_from(buf, 0)
        if len(buf) != _ERR_HEAD.size + nc + nm:
            raise FrameError("bad_extra", "error section length mismatch")
        code = buf[_ERR_HEAD.size:_ERR_HEAD.size + nc].decode("ascii", "replace")
        msg = buf[_ERR_HEAD.size + nc:].decode("utf-8", "replace")
        return (), code, msg
    raise FrameError("bad_extra", "TASK frames carry no extra section")


ModelCheck = Callable[[str], bool] | Iterable[str] | None


def _model_ok(check: ModelCheck, name: str) -> bool:
    if check is None:
        return True
    if callable(check):
        return bool(check(name))
    return name in check


def read_frame(src, limits: Limits = DEFAULT_LIMITS, allowed_models: ModelCheck = None,
               idle_timeout: float | None = None,
               reserve: Callable[[int], None] | None = None) -> Frame | None:
    """Read and validate exactly one frame from a socket or binary stream.

    Returns ``None`` on a clean end of stream before the first byte.  Raises
    :class:`FrameTimeout` if no byte arrives within ``idle_timeout`` (default
    ``limits.io_timeout``) or the frame is not complete within ``limits.frame_timeout``,
    and :class:`FrameError` for anything malformed.  The payload buffer is allocated
    only after the header and the small sections passed every check (including
    ``allowed_models``, a set of names or a predicate); ``reserve(n)`` is called just
    before the n-byte payload is allocated and may raise FrameError (e.g. a worker's
    memory budget; the caller releases it).  After a FrameError the
    stream position is undefined: close the connection.
    """
    rd = _Reader(src, limits, idle_timeout)
    head = bytearray(HEADER_SIZE)
    if not rd.read_into(head, "header", allow_eof=True):
        return None
    (magic, version, msg_type, flags, task_id, model_raw, cut, hop_index, n_hops, dtype,
     ndim, topk, *rest) = _HEADER.unpack(head)
    dims, (payload_len, plan_len, stamps_len, extra_len, crc) = rest[:MAX_NDIM], rest[MAX_NDIM:]
    if magic != MAGIC:
        raise FrameError("bad_magic", repr(bytes(magic)))
    if version != VERSION:
        raise FrameError("bad_version", str(version))
    if msg_type not in MSG_NAMES:
        raise FrameError("bad_type", str(msg_type))
    if flags & ~KNOWN_FLAGS:
        raise FrameError("bad_flags", hex(flags))
    model_b = model_raw.rstrip(b"\0")
    if not _MODEL_RE.match(model_b):
        raise FrameError("bad_model_name", repr(model_b[:24]))
    model = model_b.decode("ascii")
    if n_hops > limits.max_hops:
        raise FrameError("too_many_hops", f"{n_hops} > {limits.max_hops}")
    if msg_type == TASK and (n_hops == 0 or hop_index >= n_hops):
        raise FrameError("bad_hop_index", f"{hop_index} of {n_hops}")
    if plan_len > limits.max_plan_bytes:
        raise FrameError("plan_too_large", str(plan_len))
    if stamps_len > limits.max_stamps_bytes:
        raise FrameError("stamps_too_large", str(stamps_len))
    if extra_len > limits.max_extra_bytes:
        raise FrameError("extra_too_large", str(extra_len))
    if payload_len > limits.max_payload:
        raise FrameError("payload_too_large", f"{payload_len} > {limits.max_payload}")
    if ndim > limits.max_ndim:
        raise FrameError("bad_ndim", str(ndim))
    if any(dims[ndim:]):
        raise FrameError("bad_shape", "non-zero unused dimension slot")
    shape = tuple(dims[:ndim])
    if dtype == NO_TENSOR:
        if ndim or payload_len:
            raise FrameError("bad_shape", "tensor-less frame with shape or payload")
    else:
        if dtype not in DTYPES:
            raise FrameError("bad_dtype", str(dtype))
        if ndim == 0 or any(d == 0 for d in shape):
            raise FrameError("bad_shape", f"empty shape {shape}")
        if math.prod(shape) * DTYPES[dtype].itemsize != payload_len:
            raise FrameError("bad_shape", f"shape {shape} does not match {payload_len} bytes")
    if msg_type == TASK and (dtype == NO_TENSOR or not 1 <= topk <= 100):
        raise FrameError("bad_task", "TASK needs a tensor and 1 <= topk <= 100")

    small = bytearray(plan_len + stamps_len + extra_len)
    if small:
        rd.read_into(small, "sections")
    if zlib.crc32(small, zlib.crc32(memoryview(head)[:_CRC_OFFSET])) != crc:
        raise FrameError("bad_crc", "header/sections checksum mismatch")
    reply_to, hops = _dec_plan(bytes(small[:plan_len]), n_hops)
    stamps = _dec_stamps(bytes(small[plan_len:plan_len + stamps_len]))
    results, err_code, err_msg = _dec_extra(msg_type, bytes(small[plan_len + stamps_len:]))
    ctx = dict(task_id=bytes(task_id), reply_to=reply_to, hops=hops, hop_index=hop_index,
               stamps=stamps, model=model, cut=cut, unread=payload_len)
    if msg_type == TASK and hops[hop_index].start != cut:
        raise FrameError("bad_cut", f"tensor at point {cut}, hop starts at {hops[hop_index].start}",
                         **ctx)
    if not _model_ok(allowed_models, model):
        raise FrameError("unknown_model", model, **ctx)
    if reserve is not None:
        try:
            reserve(payload_len)
        except FrameError as e:
            raise FrameError(e.reason, e.detail, **ctx) from None

    payload = bytearray(payload_len)  # allocated only after every check passed
    if payload_len:
        rd.read_into(payload, "payload")
    return Frame(msg_type=msg_type, task_id=bytes(task_id), model=model, cut=cut,
                 hop_index=hop_index, hops=hops, reply_to=reply_to, stamps=stamps,
                 dtype=dtype, shape=shape, payload=payload, flags=flags, topk=topk,
                 results=results, error_code=err_code, error_message=err_msg,
                 recv_start=rd.first_byte_at, recv_end=time.time())


def skip_payload(src, n: int, limits: Limits = DEFAULT_LIMITS) -> None:
    """Read and discard ``n`` bytes (a rejected frame's payload) through a 64 KiB buffer,
    within ``limits.frame_timeout``; raises FrameError if the stream ends or stalls."""
    rd = _Reader(src, limits, None)
    rd.deadline = time.monotonic() + limits.frame_timeout
    scratch = memoryview(bytearray(min(n, 1 << 16)))
    while n > 0:
        chunk = scratch[:min(n, scratch.nbytes)]
        rd.read_into(chunk, "skipped payload")
        n -= chunk.nbytes


def decode(data: bytes, limits: Limits = DEFAULT_LIMITS, allowed_models: ModelCheck = None) -> Frame:
    """Decode one complete frame held in ``data`` (trailing bytes are an error)."""
    import io

    bio = io.BytesIO(data)
    frame = read_frame(bio, limits, allowed_models)
    if frame is None:
        raise FrameError("truncated", "empty input")
    if bio.tell() != len(data):
        raise FrameError("trailing_bytes", f"{len(data) - bio.tell()} bytes after the frame")
    return frame
