"""Repair a decision vector into a feasible one whenever any feasible one exists.

Local feasibility depends on the device alone; an offloader's time, power and energy only
get worse as k (offloaders on its AP) and K (offloaders in all) grow.  Hence a feasible
schedule exists iff offloading exactly the devices that cannot run locally (``must``) is
feasible, and :func:`repair` (offload ``must``, then move offloaders back to local until
every constraint holds) ends feasible whenever any schedule is.  Every method's decision
goes through it (docs/energy.md, "Feasibility").
"""
from __future__ import annotations

import numpy as np

from .model import Tables, evaluate


def repair(tab: Tables, x) -> tuple[np.ndarray, int]:
    """(feasible x', number of devices whose decision was changed); x' = x if x is feasible."""
    x0 = np.asarray(x, dtype=bool).copy()
    x = x0.copy()
    out = evaluate(tab, x)
    if out.all_feasible[0]:
        return x, 0
    must = ~tab.ok_loc
    x |= must
    for _ in range(tab.inst.n + 1):
        out = evaluate(tab, x)
        bad = ~out.feasible[0]
        if not bad.any():
            break
        movable = x & ~must
        if not movable.any():
            break                                   # = offload exactly `must`: nothing is feasible
        bad_movable = bad & movable
        if bad_movable.any():
            x[bad_movable] = False                  # late offloaders that can run locally do so
            continue
        # only devices that must offload miss a constraint: free the least useful offloader,
        # preferring one on the AP of a device in trouble
        trouble_aps = np.zeros(tab.inst.system.n_aps, bool)
        trouble_aps[tab.inst.ap[bad]] = True
        gain = tab.c_loc - out.cost[0]              # what going local costs this device
        gain = gain - 1e6 * trouble_aps[tab.inst.ap]
        gain[~movable] = np.inf
        x[int(np.argmin(gain))] = False
    return x, int((x != x0).sum())


def feasible_exists(tab: Tables) -> bool:
    return bool(evaluate(tab, ~tab.ok_loc).all_feasible[0])
