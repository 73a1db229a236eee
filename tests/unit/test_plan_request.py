import json

import pytest

from protocol.plan_request import (MAGIC, PlanProtocolError, PlanRequest, decode_reply, decode_request,
                                      encode_reply, encode_request)


def test_request_round_trip_with_features_and_hops():
    request = PlanRequest("d1-1", "alexnet", "fixed", "10.0.0.2", features=(0.1, 2.0), q=0.3,
                          reply_port=40000, hops=(("e1", 0, 5), ("cloud", 5, 11)), in_flight=3)
    assert decode_request(encode_request(request)) == request


def test_reply_round_trip():
    reply = {"task_id": "x", "ok": True, "hops": []}
    assert decode_reply(encode_reply(reply)) == reply


@pytest.mark.parametrize("fields", [
    {"task_id": "a b", "model": "alexnet", "device_ip": "10.0.0.1"},
    {"task_id": "a", "model": "AlexNet", "device_ip": "10.0.0.1"},
    {"task_id": "a", "model": "alexnet", "device_ip": "host"},
    {"task_id": "a", "model": "alexnet", "device_ip": "10.0.0.1", "method": "magic"},
    {"task_id": "a", "model": "alexnet", "device_ip": "10.0.0.1", "q": 1.5},
    {"task_id": "a", "model": "alexnet", "device_ip": "10.0.0.1", "features": [float("nan")]},
    {"task_id": "a", "model": "alexnet", "device_ip": "10.0.0.1", "features": [0.0] * 100},
    {"task_id": "a", "model": "alexnet", "device_ip": "10.0.0.1", "reply_port": 70000},
    {"task_id": "a", "model": "alexnet", "device_ip": "10.0.0.1", "method": "fixed"},
    {"task_id": "a", "model": "alexnet", "device_ip": "10.0.0.1", "hops": [["e1", 0, 11]]},
    {"task_id": "a", "model": "alexnet", "device_ip": "10.0.0.1", "method": "fixed", "hops": [["e1", -1, 5]]},
    {"task_id": "a", "model": "alexnet", "device_ip": "10.0.0.1", "colour": "red"},
    {"task_id": "a", "model": "alexnet", "device_ip": "10.0.0.1", "in_flight": -1},
    {"task_id": "a", "model": "alexnet", "device_ip": "10.0.0.1", "in_flight": 1.5},
    {"task_id": "a", "model": "alexnet", "device_ip": "10.0.0.1", "in_flight": True},
    {"model": "alexnet", "device_ip": "10.0.0.1"},
])
def test_bad_requests_refused(fields):
    with pytest.raises(PlanProtocolError):
        decode_request(MAGIC + json.dumps(fields).encode())


@pytest.mark.parametrize("payload", [b"", b"nope", MAGIC + b"{", MAGIC + b"[1]", MAGIC + b" " * 5000])
def test_bad_frames_refused(payload):
    with pytest.raises(PlanProtocolError):
        decode_request(payload)
