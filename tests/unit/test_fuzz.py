"""Fuzzing: the decoder only ever raises FrameError; a live worker survives thousands of
malformed frames without crashing, hanging or growing its memory, and still serves."""
import logging
import os
import random
import socket
import struct
import threading
import time
import zlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import wire
from runtime.client import Client
from protocol.task_plan import Hop, WirePlan
from runtime.testing import TINY_NAME, tiny_factory
from protocol.wire import TASK, Frame, FrameError, Limits, Stage
from runtime.worker import Worker

SCALE = int(os.environ.get("SDNCEP_FUZZ_SCALE", "1"))   # tests/app/test_rest_fuzz.py: the full run
LIMITS = Limits(max_payload=4 << 20, io_timeout=1.0, frame_timeout=2.0)


def valid_task(addr, reply, hop_index=0) -> bytes:
    hops = (Hop(addr[0], addr[1], 0, 2), Hop(addr[0], addr[1], 2, 4))
    f = Frame(TASK, wire.new_task_id(), TINY_NAME, hops[hop_index].start, hop_index, hops, reply,
              stamps=(Stage("client", wire.NO_HOP, 0, 0, send_start=time.time()),), topk=3)
    shape = (1, 3, 8, 8) if hop_index == 0 else (1, 4, 4, 4)
    return wire.encode(f, np.ones(shape, np.float32))


def recrc(data: bytes) -> bytes:
    """Fix the CRC so a mutated header/section reaches the deeper validation steps."""
    if len(data) < wire.HEADER_SIZE:
        return data
    fields = wire._HEADER.unpack_from(data)
    n = sum(fields[-4:-1])  # plan + stamps + extra lengths
    body = data[wire.HEADER_SIZE:wire.HEADER_SIZE + n]
    crc = zlib.crc32(body, zlib.crc32(data[:wire.HEADER_SIZE - 4]))
    return data[:wire.HEADER_SIZE - 4] + struct.pack("!I", crc) + data[wire.HEADER_SIZE:]


def set_field(data: bytes, index: int, value) -> bytes:
    fields = list(wire._HEADER.unpack_from(data))
    fields[index] = value
    try:
        head = wire._HEADER.pack(*fields)
    except struct.error:
        return data
    return recrc(head + data[wire.HEADER_SIZE:])


# header field indices: 0 magic 1 ver 2 type 3 flags 4 id 5 model 6 cut 7 hop 8 nhops 9 dtype
# 10 ndim 11 topk 12-19 shape 20 payload 21 plan 22 stamps 23 extra 24 crc
FIELD_VALUES = {
    2: [0, 2, 3, 4, 255], 3: [1, 2, 0xFFFF], 5: [b"alexnet", b"vgg16", b"\xff" * 24, b"a b"],
    6: [0, 1, 2, 3, 4, 5, 65535], 7: [0, 1, 2, 255], 8: [0, 1, 2, 9, 255], 9: [0, 1, 2, 3, 8, 9, 255],
    10: [0, 1, 3, 4, 8, 9, 255], 11: [0, 1, 100, 101, 255], 12: [0, 1, 2**32 - 1],
    13: [0, 3, 2**31], 20: [0, 4, 191, 192, 2**20, 4 << 20, (4 << 20) + 1, 2**63, 2**64 - 1],
    21: [0, 1, 30, 2048, 2049, 65535], 22: [0, 61, 62, 124, 65535], 23: [0, 1, 3, 4096, 65535],
}


def mutate(rng: random.Random, good: bytes) -> bytes:
    kind = rng.randrange(9)
    if kind == 0:  # random bytes
        return rng.randbytes(rng.randrange(0, 400))
    if kind == 1:  # magic then noise
        return wire.MAGIC + rng.randbytes(rng.randrange(0, 300))
    if kind == 2:  # truncation of a valid frame
        return good[:rng.randrange(1, len(good))]
    if kind == 3:  # bit flips anywhere (CRC catches header/section flips)
        b = bytearray(good)
        for _ in range(rng.randrange(1, 5)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == 4:  # a header field set to an interesting value, CRC fixed
        idx = rng.choice(sorted(FIELD_VALUES))
        return set_field(good, idx, rng.choice(FIELD_VALUES[idx]))
    if kind == 5:  # random section bytes, CRC fixed
        b = bytearray(good)
        n = sum(wire._HEADER.unpack_from(good)[21:24])
        for _ in range(rng.randrange(1, 6)):
            b[wire.HEADER_SIZE + rng.randrange(n)] = rng.randrange(256)
        return recrc(bytes(b))
    if kind == 6:  # valid header with huge or lying lengths, then EOF
        return set_field(good, 20, rng.choice([2**40, 2**63, 4 << 20]))[:wire.HEADER_SIZE + 50]
    if kind == 7:  # valid frame followed by garbage on the same connection
        return good + rng.randbytes(rng.randrange(1, 200))
    # several valid frames then a truncated one
    return good * rng.randrange(1, 3) + good[:rng.randrange(1, len(good))]


def rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@settings(max_examples=400 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_decoder_random_bytes_only_frame_errors(data):
    try:
        wire.decode(data)
    except FrameError:
        pass


@settings(max_examples=800 * SCALE, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_decoder_mutations_only_frame_errors(seed):
    good = valid_task(("127.0.0.1", 9000), ("127.0.0.1", 9001))
    data = mutate(random.Random(seed), good)
    try:
        f = wire.decode(data, LIMITS)
    except FrameError:
        return
    assert f.msg_type in wire.MSG_NAMES


def _throw(addr, payload: bytes) -> None:
    with socket.create_connection(addr, timeout=5) as s:
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            return  # worker already closed on us: fine
        s.settimeout(5)  # the worker must close its side: no hang
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass


def test_live_worker_survives_fuzz(caplog):
    caplog.set_level(logging.CRITICAL, logger="runtime.worker")
    caplog.set_level(logging.CRITICAL, logger="runtime.client")
    w = Worker(name="fz", models=[TINY_NAME], model_factory=tiny_factory(), limits=LIMITS,
               max_inflight_bytes=16 << 20, idle_timeout=2.0, connect_timeout=0.2,
               send_timeout=1.0).start()
    client = Client(("127.0.0.1", 0)).start()
    try:
        plan = WirePlan(TINY_NAME, (Hop(*w.address, 0, 2), Hop(*w.address, 2, 4)))
        x = np.ones((1, 3, 8, 8), np.float32)
        assert client.infer(plan, x, timeout=10).status == "ok"
        reply = ("127.0.0.1", client.reply_port)
        goods = [valid_task(w.address, reply, 0), valid_task(w.address, reply, 1)]
        rng = random.Random(20261122)
        cases = [mutate(rng, rng.choice(goods)) for _ in range(3000 * SCALE)]
        for warm in cases[:300]:
            _throw(w.address, warm)
        threads_before, rss_before = threading.active_count(), rss_kib()
        t0 = time.monotonic()
        errors = []

        def run(chunk):
            try:
                for c in chunk:
                    _throw(w.address, c)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        ts = [threading.Thread(target=run, args=(cases[300 + i::3],)) for i in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert not errors, errors[:3]
        assert time.monotonic() - t0 < 60
        # still serving, correct answers
        for i in range(5):
            res = client.infer(plan, x, timeout=10)
            assert res.status == "ok", res
        load = w.load()
        assert load["frames_rejected"] > 1000
        deadline = time.monotonic() + 5
        while w.load()["inflight_bytes"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert w.load()["inflight_bytes"] == 0
        growth_mib = (rss_kib() - rss_before) / 1024
        assert growth_mib < 64, f"RSS grew by {growth_mib:.1f} MiB"
        deadline = time.monotonic() + 5
        while threading.active_count() > threads_before + 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() <= threads_before + 4
    finally:
        client.close()
        w.stop()
