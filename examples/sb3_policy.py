"""A plug-in policy that decides with a policy exported by ``examples/sb3_maskable_ppo.py``.

The export is two files beside each other, no pickle anywhere:

* ``<stem>.npz``: the SB3 policy's ``state_dict`` as numpy arrays (``np.savez``; read
  here with ``np.load(..., allow_pickle=False)``);
* ``<stem>.json``: what the arrays mean: ``format`` (:data:`FORMAT`), ``model``, ``m``,
  ``n_edge``, ``edge_names`` (the agent's edge slots, :func:`agents.features.edge_slots`),
  ``two_hop`` (:class:`agents.codec.ActionCodec`), ``obs_dim`` and ``n_actions``
  (:func:`agents.features.observe`, the env's ``Discrete``), ``actor``: the layers of the
  action network in order, each ``{"weight": key, "bias": key, "activation": "tanh" |
  "relu" | null}`` (``h = act(h @ W.T + b)``, the last layer's output is the logits),
  ``npz_sha256`` of the weights file, and ``training`` (how it was made).

:class:`SB3Policy` (explicit path, for library use) decides with a numpy forward
pass of the actor and the action mask applied (masked argmax: the most probable
feasible action of the trained ``MaskablePPO``), and returns the action's
:class:`~agents.cost.Plan` as :class:`agents.dqn.SdnCepPolicy` does. It raises
:class:`agents.decision.DecisionError` subclasses when the task does not fit: another
model (:class:`WrongModel`), more edge nodes than it has slots
(:class:`agents.features.SlotError`), an export that does not match the observation
(:class:`ExportMismatch`).

As a plug-in (agents.registry: ``package.module:attr``, called with the keyword
arguments it accepts), the factory :func:`from_env` reads the export's path from
the environment variable ``SDNCEP_SB3_POLICY`` (default ``results/sb3/maskable_ppo``)::

    SDNCEP_SB3_POLICY=results/sb3/maskable_ppo  ... --methods examples.sb3_policy:from_env
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from agents.codec import ActionCodec
from agents.cost import Plan
from agents.decision import DecisionContext, DecisionError
from agents.features import action_mask, edge_slots, observe, slot_names

FORMAT = "sdncep-sb3-policy/1"
ENV_VAR = "SDNCEP_SB3_POLICY"
DEFAULT_PATH = "results/sb3/maskable_ppo"
_ACTIVATIONS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0), None: lambda x: x}


class WrongModel(DecisionError):
    """The exported policy was trained for another DNN model."""


class ExportMismatch(DecisionError):
    """The export does not fit the observation or action space it is asked to decide in."""


class ExportError(ValueError):
    """The export files are missing, inconsistent or of another format."""


def export_paths(path: str | Path) -> tuple[Path, Path]:
    """(``.npz``, ``.json``) of an export named by its stem or either file."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".npz", ".json") else p
    return stem.with_name(stem.name + ".npz"), stem.with_name(stem.name + ".json")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class SB3Policy:
    """The exported actor of a MaskablePPO, as a :class:`agents.decision.Policy`."""

    name = "maskable-ppo"

    def __init__(self, path: str | Path, name: str | None = None):
        npz, meta_path = export_paths(path)
        if not npz.is_file() or not meta_path.is_file():
            raise ExportError(f"no SB3 policy export at {npz.with_suffix('')} (need {npz.name} and "
                              f"{meta_path.name}; make one with python -m examples.sb3_maskable_ppo)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ExportError(f"{meta_path}: format {meta.get('format')!r}, expected {FORMAT!r}")
        if meta.get("npz_sha256") not in (None, sha256(npz)):
            raise ExportError(f"{npz} does not match {meta_path} (sha256 differs)")
        with np.load(npz, allow_pickle=False) as arrays:
            weights = {k: np.asarray(arrays[k], dtype=np.float32) for k in arrays.files}
        self.meta = meta
        self.path = npz.with_suffix("")
        if name:
            self.name = name
        self.model = str(meta["model"])
        self.edge_names = tuple(meta["edge_names"])
        self.codec = ActionCodec(int(meta["m"]), len(self.edge_names), bool(meta["two_hop"]))
        self.obs_dim, self.n_actions = int(meta["obs_dim"]), int(meta["n_actions"])
        if self.codec.n != self.n_actions or int(meta["n_edge"]) != len(self.edge_names):
            raise ExportError(f"{meta_path}: {self.n_actions} actions / {meta['n_edge']} edge nodes, but "
                              f"m={self.codec.m} x {len(self.edge_names)} slots (two_hop={self.codec.two_hop}) "
                              f"make {self.codec.n}")
        self.layers = []
        width = self.obs_dim
        for layer in meta["actor"]:
            act = layer.get("activation")
            if act not in _ACTIVATIONS:
                raise ExportError(f"{meta_path}: unknown activation {act!r}")
            try:
                w, b = weights[layer["weight"]], weights[layer["bias"]]
            except KeyError as exc:
                raise ExportError(f"{npz}: no array {exc}") from None
            if w.ndim != 2 or w.shape[1] != width or b.shape != (w.shape[0],):
                raise ExportError(f"{npz}: layer {layer['weight']} has shape {w.shape}, input width {width}")
            self.layers.append((w.T.copy(), b, _ACTIVATIONS[act]))
            width = w.shape[0]
        if width != self.n_actions:
            raise ExportError(f"{npz}: the actor outputs {width} logits for {self.n_actions} actions")

    def supports(self, model: str) -> bool:
        return model == self.model

    def logits(self, obs: np.ndarray) -> np.ndarray:
        h = np.asarray(obs, dtype=np.float32)
        if h.shape[-1] != self.obs_dim:
            raise ExportMismatch(f"{self.name}: observation of {h.shape[-1]} features, the export takes "
                                 f"{self.obs_dim}")
        for w, b, act in self.layers:
            h = act(h @ w + b)
        return h

    def act(self, obs: np.ndarray, mask: np.ndarray | None = None) -> int:
        """The feasible action of highest logit (all-cloud, always feasible, if none is)."""
        z = self.logits(obs)
        if mask is not None:
            z = np.where(np.asarray(mask, dtype=bool), z, -np.inf)
        a = int(np.argmax(z))
        return a if np.isfinite(z[a]) else 0

    def decide(self, ctx: DecisionContext) -> Plan:
        """The plan of the masked argmax, from the policy's own observation of ``ctx.view``.

        ``ctx.obs``/``ctx.mask`` are not used: they are in the caller's edge-slot order,
        which need not be the export's (a view's nodes are put into the export's slots
        by name, :func:`agents.features.edge_slots`).
        """
        if ctx.model != self.model:
            raise WrongModel(f"{self.name}: trained for {self.model}, asked to plan {ctx.model}")
        m = ctx.store.reference(ctx.model).m
        if m != self.codec.m:
            raise ExportMismatch(f"{self.name}: trained for {self.model} with m={self.codec.m}, the profiles "
                                 f"have m={m}")
        view = ctx.view
        slots = edge_slots(view, self.edge_names)      # SlotError if the view has more edge nodes
        obs = observe(view, ctx.model, ctx.store, slots)
        mask = action_mask(view, ctx.model, self.codec, ctx.store, ctx.cost, slots=slots)
        a = self.act(obs, mask)
        return self.codec.plan(a, ctx.model, slot_names(slots), view.cloud.name)


def from_env(store=None, seed: int = 0) -> SB3Policy:
    """Plug-in factory: the export named by ``$SDNCEP_SB3_POLICY`` (default ``results/sb3/maskable_ppo``).

    ``store`` and ``seed`` are accepted for the plug-in contract; deciding needs neither
    (the profiles come with each :class:`~agents.decision.DecisionContext`).
    """
    return SB3Policy(os.environ.get(ENV_VAR) or DEFAULT_PATH)
