import json

import pytest

from protocol.heartbeat import MAGIC, Heartbeat, HeartbeatError, decode, encode

GOOD = dict(name="e1", role="edge", ip="10.0.0.4", seq=3, cpu_share=0.5, busy=0.25,
            queue_len=1, mem_free_bytes=1 << 30)


def test_round_trip():
    hb = Heartbeat(**GOOD)
    assert decode(encode(hb)) == hb


@pytest.mark.parametrize("payload", [
    b"", b"junk", MAGIC + b"{not json", MAGIC + b"[]", MAGIC + b"\xff\xfe",
    MAGIC + json.dumps(dict(GOOD, extra=1)).encode(),
    MAGIC + json.dumps({k: v for k, v in GOOD.items() if k != "busy"}).encode(),
    MAGIC + json.dumps(dict(GOOD, role="router")).encode(),
    MAGIC + json.dumps(dict(GOOD, busy=-1)).encode(),
    MAGIC + json.dumps(dict(GOOD, busy="high")).encode(),
    MAGIC + json.dumps(dict(GOOD, queue_len=1.5)).encode(),
    MAGIC + json.dumps(dict(GOOD, name="")).encode(),
    MAGIC + json.dumps(dict(GOOD, ip=4)).encode(),
    MAGIC + b"{" + b" " * 5000 + b"}",
])
def test_bad_payloads_rejected(payload):
    with pytest.raises(HeartbeatError):
        decode(payload)
