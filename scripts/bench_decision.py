#!/usr/bin/env python3
"""Benchmark one SDN-CEP decision (predictor + masked forward + decode), p50/p99 in ms.

    sdncep bench-decision [--agent checkpoints/sdncep-alexnet.pt]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # repo root, relative to this file

from agents.config import CostConfig  # noqa: E402
from agents.dqn import Agent  # noqa: E402
from scripts.sim_experiments import bench_decision, get_predictor  # noqa: E402
from scripts.train_agent import make_store  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agent", default=str(REPO / "checkpoints" / "sdncep-alexnet.pt"),
                    help="DQN checkpoint (.pt + .json); default: the shipped AlexNet agent")
    ap.add_argument("--predictor", default=str(REPO / "checkpoints" / "complexity.json"),
                    help="complexity predictor JSON (trained and written here if missing)")
    ap.add_argument("-n", type=int, default=5000, help="decisions timed")
    ap.add_argument("--profiles", default=None, help="profiles root (default: the repo's profiles/)")
    ns = ap.parse_args(argv)
    res = bench_decision(Agent.load(ns.agent), get_predictor(Path(ns.predictor)),
                         make_store(ns.profiles), CostConfig(), ns.n)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
