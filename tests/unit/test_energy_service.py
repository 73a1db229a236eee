"""The energy policy behind the northbound API (agents.energy.service) and the live
task kernel / edge worker of scripts/energy_live.py, over localhost."""
import json
import socket
import threading
import time

import numpy as np
import pytest

from agents.energy.baselines import Exhaustive
from agents.energy.instances import draw_instance
from agents.energy.model import build_tables, evaluate
from agents.energy.service import RequestError, decide, default_policies
from scripts import energy_live
from tests.polling import accepts_connections, wait_until

POLICIES = default_policies()
FIELDS = ("input_bytes", "cycles", "t_max", "f_max", "kappa", "p_max", "gain", "e_total", "e_remain")


def _request(inst, method="optimum"):
    return {"method": method, "devices": [{"name": f"d{i + 1}", **{f: float(getattr(inst, f)[i]) for f in FIELDS}}
                                          for i in range(inst.n)]}


def test_decisions_use_the_views_attachment_and_match_the_model():
    inst = draw_instance(np.random.default_rng(8), n=6)
    attachment = {f"d{i + 1}": f"a{i % 2 + 1}" for i in range(6)}     # = inst.ap (round robin)
    reply = decide(_request(inst), attachment, POLICIES)
    tab = build_tables(inst)
    x = Exhaustive().decide(tab).x
    assert [d["offload"] for d in reply["devices"]] == list(x)
    assert reply["total_cost"] == pytest.approx(evaluate(tab, x).total[0])
    assert [d["ap"] for d in reply["devices"]] == [attachment[f"d{i + 1}"] for i in range(6)]
    for d in reply["devices"]:
        assert (d["rate_bps"] > 0) == d["offload"] and (d["freq_hz"] > 0) == (not d["offload"])
    # moving every device to one AP changes the loads the decision sees
    crowded = decide(_request(inst), {n: "a1" for n in attachment}, POLICIES)
    assert crowded["aps"] == ["a1"] and crowded["total_cost"] >= reply["total_cost"] - 1e-12


@pytest.mark.parametrize("bad, message", [
    ({"devices": []}, "devices"),
    ({"devices": [{"name": "d1", "ap": "a1"}]}, "input_bytes"),
    ({"method": "nope", "devices": []}, "method"),
    ({"devices": [], "extra": 1}, "unknown"),
])
def test_bad_requests_are_refused(bad, message):
    with pytest.raises(RequestError, match=message):
        decide(bad, {}, POLICIES)


def test_unknown_device_location_is_refused():
    inst = draw_instance(np.random.default_rng(1), n=2)
    with pytest.raises(RequestError, match="AP"):
        decide(_request(inst), {}, POLICIES)


def test_paced_kernel_and_edge_worker_round_trip():
    t0 = time.perf_counter()
    energy_live.paced_kernel(0.05)
    assert 0.05 <= time.perf_counter() - t0 < 0.1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    threading.Thread(target=energy_live.serve, args=(port,), daemon=True).start()
    wait_until(lambda: accepts_connections(port), what="the edge worker listening")
    res = energy_live.run_task({"name": "d1", "mode": "offload", "edge": f"127.0.0.1:{port}", "bytes": 200_000,
                                "edge_s": 0.05, "start_at": 0})
    assert 0.05 <= res["latency_s"] < 0.3 and res["edge_s_measured"] >= 0.05
    json.dumps(res)
