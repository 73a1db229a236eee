"""Wire format: round trips, strict validation, truncation and size limits."""
import io
import socket
import struct
import threading
import tracemalloc
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import wire
from protocol.wire import ERROR, RESULT, TASK, Frame, FrameError, Hop, Limits, Stage

HOPS = (Hop("10.0.0.3", 9000, 0, 4), Hop("10.0.0.9", 9001, 4, 11))
REPLY = ("10.0.0.1", 45000)


def task_frame(**kw) -> Frame:
    base = dict(msg_type=TASK, task_id=bytes(range(16)), model="alexnet", cut=0, hop_index=0,
                hops=HOPS, reply_to=REPLY,
                stamps=(Stage("client", wire.NO_HOP, 0, 0, send_start=1700000000.25),))
    base.update(kw)
    return Frame(**base)


def valid_bytes(shape=(1, 3, 4, 4)) -> bytes:
    return wire.encode(task_frame(), np.arange(np.prod(shape), dtype=np.float32).reshape(shape))


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.uint8, np.int8,
                                   np.int16, np.int32, np.int64])
@pytest.mark.parametrize("shape", [(1,), (7,), (2, 3), (1, 3, 224, 224)[:3], (1, 2, 3, 4, 1, 2, 1, 2)])
def test_round_trip_all_dtypes_and_shapes(dtype, shape):
    arr = (np.arange(np.prod(shape)) % 100).astype(dtype).reshape(shape)
    f = wire.decode(wire.encode(task_frame(), arr))
    assert f.msg_type == TASK and f.model == "alexnet" and f.hops == HOPS and f.reply_to == REPLY
    assert f.shape == shape and f.array().dtype == np.dtype(dtype)
    np.testing.assert_array_equal(f.array(), arr)
    t = f.tensor()
    assert tuple(t.shape) == shape
    np.testing.assert_array_equal(t.numpy(), arr)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=8),
       code=st.sampled_from(sorted(wire.DTYPES)), cut=st.integers(0, 3),
       topk=st.integers(1, 100), flags=st.sampled_from([0, wire.FLAG_WANT_LOGITS]))
def test_round_trip_property(shape, code, cut, topk, flags):
    arr = np.ones(shape, dtype=wire.DTYPES[code])
    hops = (Hop("127.0.0.1", 1, 0, cut + 1),) if cut == 0 else \
        (Hop("127.0.0.1", 1, 0, cut), Hop("::1", 2, cut, cut + 2))
    f0 = task_frame(cut=cut, hop_index=len(hops) - 1, hops=hops, topk=topk, flags=flags)
    f = wire.decode(wire.encode(f0, arr))
    assert (f.cut, f.hop_index, f.hops, f.topk, f.flags) == (cut, len(hops) - 1, hops, topk, flags)
    assert f.stamps == f0.stamps and f.shape == tuple(shape)


def test_torch_tensor_zero_copy_view():
    t = torch.randn(1, 64, 27, 27)
    f = wire.decode(wire.encode(task_frame(), t))
    out = f.tensor()
    assert torch.equal(out, t)
    assert out.data_ptr() == np.frombuffer(f.payload, np.uint8).ctypes.data  # view of the buffer


def test_result_and_error_round_trip():
    stamps = (Stage("client", 255, 0, 0, send_start=1.0),
              Stage("e1", 0, 0, 4, 1.1, 1.2, 1.3, 1.4, 1.5), Stage("c1", 1, 4, 11, 2, 3, 4, 5, 6))
    res = Frame(RESULT, b"x" * 16, "vgg16", 11, 1, HOPS, REPLY, stamps, topk=3,
                results=(wire.TopK((5, 1, 2), (0.5, 0.25, 0.125)), wire.TopK((7, 8, 9), (0.5, 0.25, 0.0))))
    f = wire.decode(wire.encode(res, np.zeros((2, 1000), np.float32)))
    assert f.results == res.results and f.stamps == stamps and f.shape == (2, 1000)
    f = wire.decode(wire.encode(res))  # without logits
    assert f.dtype == wire.NO_TENSOR and f.results == res.results
    err = Frame(ERROR, b"y" * 16, "resnet18", 3, 1, HOPS, REPLY, stamps[:2],
                error_code="next_hop_unreachable", error_message="c1: refused \u2603")
    f = wire.decode(wire.encode(err))
    assert (f.error_code, f.error_message) == ("next_hop_unreachable", "c1: refused \u2603")


def test_every_truncation_point_is_rejected():
    data = valid_bytes()
    wire.decode(data)
    assert wire.read_frame(io.BytesIO(b"")) is None  # clean end of stream
    for n in range(1, len(data)):
        with pytest.raises(FrameError) as ei:
            wire.decode(data[:n])
        assert ei.value.reason == "truncated", n
    with pytest.raises(FrameError, match="trailing"):
        wire.decode(data + b"\0")


def _raw_header(**over) -> bytes:
    """A header whose CRC is valid (sections empty) with chosen fields."""
    f = dict(magic=wire.MAGIC, version=wire.VERSION, type=TASK, flags=0, task_id=b"\1" * 16,
             model=b"alexnet", cut=0, hop=0, nhops=1, dtype=1, ndim=1, topk=1,
             dims=[1, 0, 0, 0, 0, 0, 0, 0], payload=4, plan=0, stamps=0, extra=0)
    f.update(over)
    head = wire._HEADER.pack(f["magic"], f["version"], f["type"], f["flags"], f["task_id"],
                             f["model"], f["cut"], f["hop"], f["nhops"], f["dtype"], f["ndim"],
                             f["topk"], *f["dims"], f["payload"], f["plan"], f["stamps"],
                             f["extra"], 0)
    return head[:-4] + struct.pack("!I", zlib.crc32(head[:-4]))


def test_oversized_declared_payload_rejected_without_allocating():
    for size in (2**63, 2**40, wire.DEFAULT_LIMITS.max_payload + 1):
        dims, rest = [], size  # a consistent uint8 shape whose product is ``size``
        while rest > 2**31:
            dims.append(2**31)
            rest //= 2**31
        dims.append(rest)
        head = _raw_header(dtype=3, ndim=len(dims), dims=dims + [0] * (8 - len(dims)),
                           payload=size, type=RESULT, nhops=0)
        tracemalloc.start()
        try:
            with pytest.raises(FrameError) as ei:
                wire.read_frame(io.BytesIO(head))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert ei.value.reason == "payload_too_large"
        assert peak < 1 << 20


def test_tighter_limits_apply():
    data = valid_bytes((1, 3, 16, 16))
    with pytest.raises(FrameError, match="payload_too_large"):
        wire.decode(data, Limits(max_payload=1024))
    with pytest.raises(FrameError, match="too_many_hops"):
        wire.decode(data, Limits(max_hops=1))


@pytest.mark.parametrize("over,reason", [
    (dict(magic=b"XXXX"), "bad_magic"),
    (dict(version=9), "bad_version"),
    (dict(type=7), "bad_type"),
    (dict(flags=0x8000), "bad_flags"),
    (dict(model=b"Alex Net"), "bad_model_name"),
    (dict(model=b""), "bad_model_name"),
    (dict(dtype=99), "bad_dtype"),
    (dict(ndim=9), "bad_ndim"),
    (dict(dims=[1, 0, 0, 0, 0, 0, 0, 5]), "bad_shape"),
    (dict(dims=[2, 0, 0, 0, 0, 0, 0, 0]), "bad_shape"),  # 2 float32 != 4 bytes
    (dict(dims=[0, 0, 0, 0, 0, 0, 0, 0], payload=0), "bad_shape"),
    (dict(nhops=0), "bad_hop_index"),
    (dict(hop=1), "bad_hop_index"),
    (dict(nhops=200), "too_many_hops"),
    (dict(plan=60000, nhops=1), "plan_too_large"),
    (dict(stamps=60000, nhops=1), "stamps_too_large"),
    (dict(extra=60000, nhops=1), "extra_too_large"),
    (dict(topk=0, nhops=1), "bad_task"),
])
def test_header_field_validation(over, reason):
    with pytest.raises(FrameError) as ei:
        wire.decode(_raw_header(**over) + b"\0" * 64)
    assert ei.value.reason == reason


def test_crc_covers_header_and_sections():
    data = bytearray(valid_bytes())
    for pos in (10, 40, wire.HEADER_SIZE + 3, wire.HEADER_SIZE + 20):
        bad = bytearray(data)
        bad[pos] ^= 0x40
        with pytest.raises(FrameError):
            wire.decode(bytes(bad))


def test_model_allow_list_error_carries_reply_context():
    data = valid_bytes()
    assert wire.decode(data, allowed_models={"alexnet"}).model == "alexnet"
    with pytest.raises(FrameError) as ei:
        wire.decode(data, allowed_models=lambda name: name == "vgg16")
    e = ei.value
    assert e.reason == "unknown_model" and e.reply_to == REPLY and e.task_id == bytes(range(16))
    assert e.hops == HOPS


def test_bad_cut_rejected():
    with pytest.raises(FrameError, match="bad_cut"):
        wire.decode(wire.encode(task_frame(cut=2), np.zeros(3, np.float32)))


def test_encode_rejects_bad_frames():
    with pytest.raises(ValueError):
        wire.encode(task_frame(model="../etc"), np.zeros(1, np.float32))
    with pytest.raises(ValueError):
        wire.encode(task_frame(), np.zeros((1,) * 9, np.float32))
    with pytest.raises(ValueError):
        wire.encode(task_frame(reply_to=("bad host!", 1)), np.zeros(1, np.float32))
    with pytest.raises(ValueError):
        wire.encode(task_frame(), np.zeros(1, np.complex64))


def test_socket_round_trip_and_slow_sender_deadline():
    a, b = socket.socketpair()
    try:
        arr = np.random.default_rng(0).standard_normal((1, 64, 55, 55)).astype(np.float32)
        t = threading.Thread(target=wire.send_frame, args=(a, task_frame(), arr))
        t.start()
        f = wire.read_frame(b)
        t.join(5)
        np.testing.assert_array_equal(f.array(), arr)
        assert f.recv_end >= f.recv_start > 0
        # slowloris: header trickles in, the per-frame deadline fires
        a.sendall(valid_bytes()[:10])
        with pytest.raises(wire.FrameTimeout):
            wire.read_frame(b, Limits(io_timeout=0.2, frame_timeout=0.3))
    finally:
        a.close()
        b.close()


def test_idle_timeout():
    a, b = socket.socketpair()
    try:
        with pytest.raises(wire.FrameTimeout) as ei:
            wire.read_frame(b, idle_timeout=0.05)
        assert ei.value.detail == "idle"
    finally:
        a.close()
        b.close()


def test_refused_frame_can_be_skipped_to_keep_the_stream_in_sync():
    good = valid_bytes((1, 3, 64, 64))
    bio = io.BytesIO(good + good)
    with pytest.raises(FrameError) as ei:
        wire.read_frame(bio, allowed_models={"vgg16"})
    assert ei.value.unread == 3 * 64 * 64 * 4
    wire.skip_payload(bio, ei.value.unread)
    assert wire.read_frame(bio).model == "alexnet"
    with pytest.raises(FrameError, match="truncated"):
        wire.skip_payload(io.BytesIO(b"abc"), 10)


def test_a_send_that_stops_moving_fails_and_one_that_moves_does_not():
    frame = Frame(TASK, wire.new_task_id(), "alexnet", 0, 0, HOPS, ("10.0.0.2", 5000))
    tensor = np.zeros((1, 3, 224, 224), dtype=np.float32)       # 600 KB: more than the socket buffers
    stuck, _peer = socket.socketpair()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)     # far less than the frame
    _peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    with stuck, _peer:
        with pytest.raises(wire.SendStalled):
            wire.send_frame(stuck, frame, tensor, stall_timeout=0.2)
    sender, receiver = socket.socketpair()
    with sender, receiver:
        reader = threading.Thread(target=lambda: wire.read_frame(receiver, wire.DEFAULT_LIMITS))
        reader.start()
        assert wire.send_frame(sender, frame, tensor, stall_timeout=5.0) > tensor.nbytes   # a busy reader is slow, not stuck
        reader.join(timeout=10)
