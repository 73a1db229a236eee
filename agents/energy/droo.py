"""DROO-style baseline (Huang, Bi, Zhang, "Deep Reinforcement Learning for Online Computation
Offloading in Wireless Powered Mobile-Edge Computing Networks", IEEE TMC 2019).

A DNN maps the instance (per device: channel gain and task/device features, ``SLOTS``
device slots, absent ones zero) to a relaxed decision x in [0, 1]^D; the order-preserving
quantisation turns it into K binary candidates (K = D, the paper's default); each is
scored exactly (the resource sub-problem is solved in closed form by the cost tables) and
the best is taken; (input, best candidate) goes into a memory the DNN is trained on with
binary cross-entropy every ``train_interval`` decisions (paper: memory 1024, batch 128,
interval 10, Adam lr 0.01).  It learns online, also while being evaluated.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .baselines import Decision, finish
from .model import PENALTY, Tables, evaluate

SLOTS = 10
PER_SLOT = 10


def droo_input(tab: Tables, slots: int = SLOTS) -> np.ndarray:
    inst = tab.inst
    if inst.n > slots:
        raise ValueError(f"DROO was built for {slots} devices, got {inst.n}")
    f = np.zeros((slots, PER_SLOT), np.float32)
    n = inst.n
    f[:n, 0] = 1.0
    f[:n, 1] = np.log10(inst.gain) + 9.0
    f[:n, 2] = inst.input_bytes / 1e6
    f[:n, 3] = inst.cycles / 1e9
    f[:n, 4] = inst.t_max
    f[:n, 5] = inst.f_max / 1e9
    f[:n, 6] = inst.battery_ratio
    f[:n, 7] = inst.ap / max(1, inst.system.n_aps - 1)
    f[:n, 8] = inst.p_max / 0.5
    f[:n, 9] = inst.e_remain
    return f.reshape(-1)


def quantise(x: np.ndarray, k: int) -> np.ndarray:
    """Order-preserving quantisation of relaxed x (D,) into k binary candidates (k, D)."""
    n = len(x)
    out = [x > 0.5]
    order = np.argsort(np.abs(x - 0.5), kind="stable")
    for m in range(min(k, n) - 1):
        thr = x[order[m]]
        out.append((x > thr) | ((x == thr) & (thr <= 0.5)))
    return np.array(out, dtype=bool)


class DrooPolicy:
    name = "droo"

    def __init__(self, seed: int = 0, slots: int = SLOTS, memory: int = 1024, batch: int = 128,
                 train_interval: int = 10, lr: float = 0.01, learn: bool = True):
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.slots, self.batch, self.interval, self.learn = slots, batch, train_interval, learn
        self.net = nn.Sequential(nn.Linear(slots * PER_SLOT, 120), nn.ReLU(), nn.Linear(120, 80), nn.ReLU(),
                                 nn.Linear(80, slots))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.mem_x = np.zeros((memory, slots * PER_SLOT), np.float32)
        self.mem_y = np.zeros((memory, slots), np.float32)
        self.mem_w = np.zeros((memory, slots), np.float32)     # 1 on present slots
        self.count = 0
        self.losses: list[float] = []

    def relaxed(self, inp: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(self.net(torch.as_tensor(inp))).numpy()

    def decide(self, tab: Tables) -> Decision:
        n = tab.inst.n
        inp = droo_input(tab, self.slots)
        cand = quantise(self.relaxed(inp)[:n], n)
        best = cand[int(np.argmin(evaluate(tab, cand).penalised(PENALTY)))]
        if self.learn:
            self.remember(inp, best)
        return finish(tab, best)

    def remember(self, inp: np.ndarray, best: np.ndarray) -> None:
        i = self.count % len(self.mem_x)
        n = len(best)
        self.mem_x[i] = inp
        self.mem_y[i] = 0.0
        self.mem_y[i, :n] = best
        self.mem_w[i] = 0.0
        self.mem_w[i, :n] = 1.0
        self.count += 1
        if self.count % self.interval == 0 and self.count >= self.batch:
            self._train_step()

    def _train_step(self) -> None:
        idx = self.rng.integers(0, min(self.count, len(self.mem_x)), size=self.batch)
        x, y, w = (torch.as_tensor(a[idx]) for a in (self.mem_x, self.mem_y, self.mem_w))
        loss = nn.functional.binary_cross_entropy_with_logits(self.net(x), y, weight=w)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.losses.append(loss.item())

    def fit(self, tables, epochs: int = 1) -> DrooPolicy:
        """Online training on a stream of instances' tables (the decisions are discarded)."""
        for _ in range(epochs):
            for tab in tables:
                self.decide(tab)
        return self
