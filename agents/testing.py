"""Small hand-checkable fixtures for tests (a 2-segment model, a 1-edge view)."""
from __future__ import annotations

import json
from pathlib import Path

from .calibration import ProfileStore
from .config import CostConfig, Prices
from .cost import LAN, WAN, NetView, NodeView

TINY = {
    "schema": 1, "model": "tiny", "host_class": "cloud", "cpu_share": 1.0, "torch_threads": 1,
    "points": [{"index": 0, "name": "input", "out_bytes": 1000, "shape": [250]},
               {"index": 1, "name": "a", "out_bytes": 500, "shape": [125]},
               {"index": 2, "name": "output", "out_bytes": 8, "shape": [2]}],
    "segments": [{"index": 1, "name": "a", "kind": "conv", "flops": 1000000, "params": 100, "in_bytes": 1000,
                  "out_bytes": 500, "median_s": 0.1, "p90_s": 0.11, "repeats": 5},
                 {"index": 2, "name": "output", "kind": "fc", "flops": 2000000, "params": 1000, "in_bytes": 500,
                  "out_bytes": 8, "median_s": 0.2, "p90_s": 0.22, "repeats": 5}],
    "total_median_s": 0.3, "measured_full_s": 0.31, "created": "2026-11-01T00:00:00Z", "machine": "hand-made",
}


def tiny_store(root: Path) -> ProfileStore:
    d = Path(root) / "cloud"
    d.mkdir(parents=True, exist_ok=True)
    (d / "tiny.json").write_text(json.dumps(TINY))
    return ProfileStore(root, allow_synthetic=False)


def tiny_cost(w: float = 0.25) -> CostConfig:
    return CostConfig(w=w, prices=Prices(edge_per_s=1.0, cloud_per_s=2.0, wan_per_byte=1e-3, lan_per_byte=1e-4))


def tiny_view(e1_backlog: float = 0.0, wan_backlog: float = 0.0, mem: float | None = None,
              queue_len: int = 0) -> NetView:
    """cloud: 1 core, 8 kbit/s from the device; e1: 0.5 core, 80 kbit/s in, 8 kbit/s to the cloud."""
    return NetView((NodeView("e1", "edge", 0.5, e1_backlog, queue_len, mem, 8000.0, 80000.0),
                    NodeView("e2", "edge", 0.25, 0.0, 0, mem, 8000.0, 40000.0),
                    NodeView("cloud", "cloud", 1.0, 0.0, 0, None, 0.0, 8000.0)),
                   now=0.0, lan_bps=16000.0, link_backlog_s=((WAN, wan_backlog), (LAN, 0.0)))
