"""The one list of decision methods: what the planner serves, the benchmarks run and
the reports compare.

Importing this module is cheap (no numpy, no torch): the plan protocol checks method
names against it. :func:`build_baselines` makes the policies that need no trained
agent; the SDN-CEP agents come from checkpoints (:class:`agents.dqn.PerModelPolicy`).
"""
from __future__ import annotations

from dataclasses import dataclass

BASELINE, AGENT, REFERENCE, DEVICE = "baseline", "agent", "reference", "device"


@dataclass(frozen=True)
class Method:
    name: str
    kind: str          # baseline | agent | reference (bounds, not competitors) | device (its own hops)
    label: str         # for tables and figures
    about: str


_ALL = (
    Method("sdn-cep", AGENT, "SDN-CEP", "the DQN's best actions, re-ranked by the cost model on the live view"),
    Method("sdn-cep-dqn", AGENT, "SDN-CEP (DQN alone)", "the DQN's best action alone"),
    Method("only-cloud", BASELINE, "Only-Cloud", "everything in the cloud"),
    Method("only-edge", BASELINE, "Only-Edge", "everything on the nearest edge node"),
    Method("neurosurgeon", BASELINE, "Neurosurgeon",
           "best cut on the nearest edge node from regressed layer times and bandwidth, queues unseen"),
    Method("dpto", BASELINE, "DPTO", "best cut on the edge node with the most compute, its queue included"),
    Method("random", BASELINE, "Random", "a feasible action drawn uniformly"),
    Method("oracle", REFERENCE, "Oracle", "exhaustive over cuts x nodes with the true cost model (myopic)"),
    Method("oracle-2hop", REFERENCE, "Oracle (2 hops)", "the Oracle with two-edge-node cuts too"),
    Method("fixed", DEVICE, "fixed", "hops named by the device, checked and priced by the planner"),
)
METHODS = {m.name: m for m in _ALL}
#: The competitors SDN-CEP is judged against, in the paper's order.
BASELINES = ("only-cloud", "only-edge", "neurosurgeon", "dpto")
#: What the live benchmark runs by default.
BENCHMARKED = BASELINES + ("sdn-cep", "sdn-cep-dqn", "oracle")


def label(name: str) -> str:
    method = METHODS.get(name)
    return method.label if method else name


def build_baselines(store, seed: int = 0, distance=None) -> dict:
    """Every method that needs no trained agent, by name."""
    from .baselines import DPTO, Neurosurgeon, OnlyCloud, OnlyEdge, Oracle, RandomPolicy
    return {
        "only-cloud": OnlyCloud(),
        "only-edge": OnlyEdge(distance),
        "neurosurgeon": Neurosurgeon(store, distance),
        "dpto": DPTO(),
        "random": RandomPolicy(seed),
        "oracle": Oracle(False),
        "oracle-2hop": Oracle(True, name="oracle-2hop"),
    }
