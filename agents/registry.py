"""The one list of decision methods: what the planner serves, the benchmarks run and
the reports compare.

Importing this module is cheap (no numpy, no torch): the plan protocol checks method
names against it. :func:`build_baselines` makes the policies that need no trained
agent; the SDN-CEP agents come from checkpoints (:class:`agents.dqn.PerModelPolicy`).

**Plug-ins.** A method that is not built in is named by where it lives:
``package.module:attr`` (importable from ``sys.path``), or the name of a Python entry
point in the group ``sdncep.policies``. ``attr`` is a class or a factory; it is called
with whichever of the keyword arguments ``store`` (the profiles), ``seed`` and
``distance`` (switch hops from the device to a node) it accepts and returns an object
with ``decide(ctx: DecisionContext) -> Plan`` (and optionally ``supports(model)``):
the contract the built-in baselines follow. That name is the method's name
everywhere -- controller config (``policies``), plan requests, benchmark
``--methods``, records and tables.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import re
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


ENTRY_POINT_GROUP = "sdncep.policies"
MAX_NAME = 200
_PLUGIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
_ENTRY_POINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class PluginError(ValueError):
    """A plug-in method cannot be found or built."""


def is_plugin(name: str) -> bool:
    """``package.module:attr``: a method named by where it lives."""
    return isinstance(name, str) and bool(_PLUGIN.match(name))


def valid_method_name(name) -> bool:
    """What a plan request may name: a built-in, a plug-in path or an installed entry point."""
    return isinstance(name, str) and len(name) <= MAX_NAME and (
        name in METHODS or is_plugin(name) or (bool(_ENTRY_POINT_NAME.match(name)) and name in _entry_points()))


def label(name: str) -> str:
    method = METHODS.get(name)
    if method:
        return method.label
    return name.rpartition(":")[2] if is_plugin(name) else name


@functools.lru_cache(maxsize=1)
def _entry_points() -> dict:
    """The installed policies (read once: installing a package means restarting)."""
    from importlib.metadata import entry_points
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _entry_point(name):
    return _entry_points().get(name)


def load_plugin(name: str, store=None, seed: int = 0, distance=None):
    """Build the plug-in method ``name`` (see the module docstring); its ``name`` is ``name``."""
    if is_plugin(name):
        module_name, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except ImportError as exc:
            raise PluginError(f"policy {name!r}: cannot import {module_name!r} ({exc})") from None
        except AttributeError:
            raise PluginError(f"policy {name!r}: module {module_name!r} has no {attr!r}") from None
    else:
        entry = _entry_point(name)
        if entry is None:
            raise PluginError(f"unknown method {name!r}: not built in ({', '.join(METHODS)}), not "
                              f"'package.module:attr', not an entry point in group {ENTRY_POINT_GROUP!r}")
        factory = entry.load()
    if not callable(factory):
        raise PluginError(f"policy {name!r} is not callable")
    offered = {"store": store, "seed": seed, "distance": distance}
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    policy = factory(**{k: v for k, v in offered.items() if takes_all or k in params})
    if not callable(getattr(policy, "decide", None)):
        raise PluginError(f"policy {name!r} built a {type(policy).__name__} without a decide(ctx) method")
    return NamedPolicy(name, policy)


class NamedPolicy:
    """A plug-in under the name it was loaded by; everything else is the plug-in's."""

    def __init__(self, name, policy):
        self.name, self.inner = name, policy

    def decide(self, ctx):
        return self.inner.decide(ctx)

    def __getattr__(self, attr):          # supports(), reset(), ... of the plug-in
        return getattr(self.inner, attr)


def build_policies(names, store, seed: int = 0, distance=None) -> dict:
    """The methods ``names`` that need no checkpoint: built-in baselines and plug-ins.

    Agent methods (``sdn-cep``, ``sdn-cep-dqn``) and ``fixed`` are skipped: they come
    from checkpoints and from the device.
    """
    builtin = build_baselines(store, seed, distance)
    policies = {}
    for name in names:
        if name in builtin:
            policies[name] = builtin[name]
        elif name not in METHODS:
            policies[name] = load_plugin(name, store, seed, distance)
    return policies


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
