"""The methods compared: the text's mechanism and the baselines of issue 15.

* ``pricing``      -- exponential prices (0 when idle), centralised + distributed with moves.
* ``pricing-nomove`` -- the same without the move step (ablation).
* ``pricing-fixed-low`` -- the same with a fixed price scale L (``low_density``) instead of the
  learned one (ablation: the mechanism before L was learned).
* ``oasis``        -- OASiS-style prices ``L (U/L)^(q/c)`` (> 0 when idle), no move step.
* ``fixed-price``  -- one fixed price per worker-slot / PS-slot, same placement search.
* ``fcfs``         -- first come first served, first fit, earliest completion, no prices.
* ``greedy-density`` -- first fit, but the jobs of one slot in decreasing value density.
"""
from __future__ import annotations

from dataclasses import replace

from .online import Method
from .prices import PriceConfig
from .schedule import Placement


def methods(prices: PriceConfig | None = None) -> dict[str, Method]:
    """Every method, with ``prices`` as the tuning of the priced ones."""
    prices = prices or PriceConfig()
    ms = [
        Method("pricing", replace(prices, kind="exp"), Placement(move=True), about="the text's mechanism"),
        Method("pricing-nomove", replace(prices, kind="exp"), Placement(move=False), about="ablation"),
        Method("pricing-fixed-low", replace(prices, kind="exp", low="fixed"), Placement(move=True),
               about="ablation: fixed L"),
        Method("oasis", replace(prices, kind="oasis"), Placement(move=False), about="OASiS-style prices"),
        Method("fixed-price", replace(prices, kind="flat"), Placement(move=True), about="fixed price"),
        Method("fcfs", replace(prices, kind="zero"), Placement(move=True), about="FCFS first fit"),
        Method("greedy-density", replace(prices, kind="zero"), Placement(move=True), order="density",
               about="greedy by utility density"),
    ]
    return {m.name: m for m in ms}


BASELINES = ("oasis", "fixed-price", "fcfs", "greedy-density")
