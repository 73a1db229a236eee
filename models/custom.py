"""Models from outside the zoo: registration, plug-ins, and cutting a module into segments.

A model is added by *registering* a builder under a name::

    from models.zoo import register_model
    register_model("tinycnn", build_tinycnn, input_shape=(3, 32, 32))

after which ``models.build_model("tinycnn")`` returns a :class:`PartitionedModel`
like the built-in ones. The builder is called with no arguments (or with
``num_classes=`` when :func:`~models.zoo.build_model` is given one) while the torch
RNG is seeded with ``build_model``'s ``seed``, and returns one of:

* a list of :class:`~models.partitioned.Segment` (names and kinds given; no folding);
* an ``nn.Sequential`` or a list of modules (optionally ``(name, module)`` pairs):
  one segment per block, except that with ``split="auto"`` a block with no
  compute-heavy layer (only ReLU, BN, dropout, flatten...) is folded into the
  block before it;
* any other ``nn.Module``: traced with ``torch.fx`` and cut at every place where a
  single tensor flows (see :func:`fx_segments`);
* a :class:`PartitionedModel` (used as it is).

A *plug-in* is a Python module that calls :func:`register_model` when imported
(``load_plugin("pkg.module")`` or a file path ``"path/to/file.py"``), optionally
naming a function to call after the import (``"pkg.module:register"``). Every process
also loads the plug-ins named in the environment variable ``SDNCEP_MODEL_PLUGINS``
(comma-separated) the first time a name is not found, so workers started elsewhere
see the same models.

What cannot be cut: a point is a cut point only if exactly one tensor crosses it.
Inside a residual block (input and branch both alive), between the branches of an
inception-like block, or anywhere a value computed early (a tensor, a size, a mask)
is used later, there is no cut point; such a region becomes one segment. A model
whose input or output is not a single float32 tensor cannot be partitioned here.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import operator
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from models.partitioned import PartitionedModel, Segment

#: What ``protocol/wire.py`` carries in its 24-byte model field (``_MODEL_RE`` there).
MODEL_NAME_RE = re.compile(r"^[a-z0-9_]{1,24}$")
#: Environment variable naming plug-ins to load (comma-separated specs).
PLUGINS_ENV = "SDNCEP_MODEL_PLUGINS"
SPLITS = ("auto", "every")


class ModelRegistrationError(ValueError):
    """A model could not be registered, loaded or cut into segments."""


class NotSplittableError(ModelRegistrationError):
    """A module cannot be turned into a chain of single-tensor segments."""


class ModelCheckError(ValueError):
    """:func:`check_model` found a property the testbed relies on violated."""


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it and how to cut it."""

    name: str
    builder: Callable[..., Any]
    input_shape: tuple[int, ...]
    split: str = "auto"
    leaf_modules: tuple[type, ...] = ()
    kinds: Mapping[str, str] = field(default_factory=dict)
    init: str | None = None
    source: str = ""


_REGISTRY: dict[str, ModelSpec] = {}
_LOCK = threading.RLock()
_ENV_LOADED: set[str] = set()


def _builtin_names() -> tuple[str, ...]:
    from models.zoo import MODEL_NAMES
    return MODEL_NAMES


# ------------------------------------------------------------------ registration
def register_model(name: str, builder: Callable[..., Any], *, input_shape: Sequence[int],
                   split: str = "auto", leaf_modules: Iterable[type] = (),
                   kinds: Mapping[str, str] | None = None, init: str | None = None,
                   replace: bool = False) -> ModelSpec:
    """Make ``build_model(name)`` build ``builder()``'s model.

    Args:
        name: ``[a-z0-9_]{1,24}`` (what the wire format's model field carries); not a
            built-in name.
        builder: callable returning a list of Segments, an ``nn.Sequential``, a list of
            blocks, any fx-traceable ``nn.Module`` or a PartitionedModel (see the module
            docstring). Called with no arguments, or ``num_classes=n`` if
            ``build_model`` is given one.
        input_shape: shape of one input sample, without the batch dimension.
        split: ``"auto"`` folds blocks without a compute-heavy layer into the block
            before them; ``"every"`` keeps every cut point.
        leaf_modules: module classes ``torch.fx`` must not trace into (each call is one
            node, so never cut inside); use for blocks fx cannot trace.
        kinds: segment name -> kind, overriding the inferred kind (``conv``, ``pool``,
            ``fc``, ``block``, ``other``), which the latency predictor regresses per kind.
        init: ``None`` keeps the builder's weights (PyTorch's default init, seeded, or
            weights the builder loaded); ``"torchvision"`` re-initialises conv/BN/linear
            like the built-in models.
        replace: allow registering ``name`` again (a plug-in reloaded in a notebook).
    """
    if not isinstance(name, str) or not MODEL_NAME_RE.match(name):
        raise ModelRegistrationError(
            f"model name {name!r} must match [a-z0-9_]{{1,24}} (the wire format's model field)")
    if name in _builtin_names():
        raise ModelRegistrationError(f"{name!r} is a built-in model; choose another name")
    if not callable(builder):
        raise ModelRegistrationError(f"builder for {name!r} must be callable, got {builder!r}")
    try:
        shape = tuple(operator.index(d) for d in input_shape)
    except TypeError:
        raise ModelRegistrationError(
            f"input_shape of {name!r} must be a sequence of ints, got {input_shape!r}") from None
    if not shape or any(d <= 0 for d in shape):
        raise ModelRegistrationError(f"input_shape of {name!r} must be positive ints, got {shape}")
    if len(shape) + 1 > 8:
        raise ModelRegistrationError(
            f"input_shape of {name!r} has {len(shape)} dims; the wire format carries at most 8 "
            "including the batch dimension")
    if split not in SPLITS:
        raise ModelRegistrationError(f"split must be one of {SPLITS}, got {split!r}")
    if init not in (None, "torchvision"):
        raise ModelRegistrationError(f"init must be None or 'torchvision', got {init!r}")
    spec = ModelSpec(name, builder, shape, split, tuple(leaf_modules), dict(kinds or {}), init,
                     getattr(builder, "__module__", "") or "")
    with _LOCK:
        old = _REGISTRY.get(name)
        if old is not None and not replace and old.builder is not builder:
            raise ModelRegistrationError(
                f"model {name!r} is already registered (from {old.source or '?'}); "
                "pass replace=True to replace it")
        _REGISTRY[name] = spec
    return spec


def unregister_model(name: str) -> None:
    """Forget a registered model (no error if it is not registered)."""
    with _LOCK:
        _REGISTRY.pop(name, None)


def registered_models() -> tuple[str, ...]:
    """Names of the registered (non-built-in) models, sorted, after loading env plug-ins."""
    load_env_plugins()
    with _LOCK:
        return tuple(sorted(_REGISTRY))


def get_spec(name: str) -> ModelSpec | None:
    """The registered spec of ``name`` (env plug-ins loaded first), or None."""
    with _LOCK:
        spec = _REGISTRY.get(name)
    if spec is None:
        load_env_plugins()
        with _LOCK:
            spec = _REGISTRY.get(name)
    return spec


# ------------------------------------------------------------------ plug-ins
def load_plugin(spec: str) -> Any:
    """Import a plug-in and return its module.

    ``spec`` is ``package.module``, ``package.module:function`` or a path to a ``.py``
    file (optionally ``path/to/file.py:function``). The module is imported (its
    top-level ``register_model`` calls run); ``function``, if given, is then called
    with no arguments. A module already imported is not imported again.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ModelRegistrationError(f"plug-in spec must be a non-empty string, got {spec!r}")
    target, _, func = spec.strip().partition(":")
    # a Windows drive letter would also contain ':', but this testbed runs on Linux
    try:
        if target.endswith(".py") or os.sep in target:
            path = Path(target).expanduser().resolve()
            if not path.is_file():
                raise ModelRegistrationError(f"plug-in file {path} does not exist")
            mod_name = f"sdncep_plugin_{path.stem}"
            module = sys.modules.get(mod_name)
            if module is None or getattr(module, "__file__", None) != str(path):
                file_spec = importlib.util.spec_from_file_location(mod_name, path)
                module = importlib.util.module_from_spec(file_spec)
                sys.modules[mod_name] = module
                try:
                    file_spec.loader.exec_module(module)
                except BaseException:
                    sys.modules.pop(mod_name, None)
                    raise
        else:
            module = importlib.import_module(target)
    except ModelRegistrationError:
        raise
    except ImportError as exc:
        raise ModelRegistrationError(
            f"cannot import model plug-in {target!r}: {exc} (is its folder on PYTHONPATH?)") from exc
    if func:
        fn = getattr(module, func, None)
        if not callable(fn):
            raise ModelRegistrationError(f"plug-in {target!r} has no function {func!r}")
        fn()
    return module


def load_env_plugins() -> None:
    """Load the plug-ins named in ``$SDNCEP_MODEL_PLUGINS`` (each once it has loaded;
    one that fails raises every time it is needed, naming the plug-in)."""
    specs = [s.strip() for s in os.environ.get(PLUGINS_ENV, "").split(",") if s.strip()]
    if all(spec in _ENV_LOADED for spec in specs):
        return
    with _LOCK:
        for spec in specs:
            if spec not in _ENV_LOADED:
                try:
                    load_plugin(spec)
                except Exception as exc:
                    raise ModelRegistrationError(f"${PLUGINS_ENV}: plug-in {spec!r}: {exc}") from exc
                _ENV_LOADED.add(spec)


# ------------------------------------------------------------------ kinds
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
         nn.ConvTranspose3d)
_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
         nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
         nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_CHEAP = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
          nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.Dropout, nn.Dropout2d,
          nn.Dropout3d, nn.Identity, nn.Flatten, nn.Unflatten)
_HEAVY_FN = re.compile(r"conv|linear|matmul|bmm|^mm$|addmm|pool|einsum|attention")


def _leaf_class(module: nn.Module) -> str:
    """``conv``, ``fc``, ``pool``, ``heavy`` (other layer with parameters) or ``cheap``."""
    if isinstance(module, _CONV):
        return "conv"
    if isinstance(module, nn.Linear):
        return "fc"
    if isinstance(module, _POOL):
        return "pool"
    if isinstance(module, _CHEAP) or not any(True for _ in module.parameters(recurse=False)):
        return "cheap"
    return "heavy"


def _kind_of(classes: Iterable[str]) -> str:
    """A segment's kind from the classes of its compute nodes."""
    cs = [c for c in classes if c != "cheap"]
    big = [c for c in cs if c in ("conv", "fc", "heavy", "block")]
    if len(big) >= 2 or big[:1] in (["heavy"], ["block"]):
        return "block"
    if big:
        return big[0]
    return "pool" if cs else "other"


def _module_classes(module: nn.Module) -> list[str]:
    leaves = [m for m in module.modules() if not list(m.children())]
    return [_leaf_class(m) for m in leaves]


def infer_kind(module: nn.Module) -> str:
    """``conv`` / ``fc`` / ``pool`` for a block with one such layer (plus BN, ReLU...),
    ``block`` for several conv/linear layers, ``other`` for none."""
    return _kind_of(_module_classes(module))


def _fold(chunks: list[Any], heavy: list[bool]) -> list[list[Any]]:
    """Group consecutive chunks: a chunk without a compute-heavy op joins the group
    before it (leading ones join the first heavy chunk; all cheap: one group)."""
    groups: list[list[Any]] = []
    lead: list[Any] = []
    for chunk, h in zip(chunks, heavy):
        if h:
            groups.append(lead + [chunk])
            lead = []
        elif groups:
            groups[-1].append(chunk)
        else:
            lead.append(chunk)
    if lead:
        groups.append(lead)
    return groups


# ------------------------------------------------------------------ block lists
def _unique(names: list[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for n in names:
        base = n if n and n not in ("input", "output") else f"seg_{n}"
        cand, i = base, 2
        while cand in seen:
            cand, i = f"{base}_{i}", i + 1
        seen.add(cand)
        out.append(cand)
    return out


def sequential_segments(blocks: nn.Sequential | Sequence[Any], split: str = "auto",
                        kinds: Mapping[str, str] | None = None) -> list[Segment]:
    """Segments from a sequence of blocks (modules or ``(name, module)`` pairs).

    Names: the Sequential's child names, or ``<kind><n>`` (``conv1``, ``pool1``, ``fc1``...)
    for unnamed or numbered children. With ``split="auto"`` blocks without a conv,
    linear, pooling or other parametrised layer are folded into the block before them.
    """
    if isinstance(blocks, nn.Sequential):
        items = list(blocks.named_children())
    else:
        items = []
        for i, b in enumerate(blocks):
            if isinstance(b, tuple) and len(b) == 2 and isinstance(b[1], nn.Module):
                items.append((str(b[0]), b[1]))
            elif isinstance(b, nn.Module):
                items.append((str(i), b))
            else:
                raise NotSplittableError(f"block {i} is {type(b).__name__}, not an nn.Module")
    if not items:
        raise NotSplittableError("no blocks to make segments of")
    heavy = [any(c != "cheap" for c in _module_classes(m)) for _, m in items]
    flagged = [(n, m, h) for (n, m), h in zip(items, heavy)]
    groups = _fold(flagged, heavy) if split == "auto" else [[it] for it in flagged]
    counters: dict[str, int] = {}
    segs: list[tuple[str, str, nn.Module]] = []
    for group in groups:
        mod = group[0][1] if len(group) == 1 else nn.Sequential(*(m for _, m, _ in group))
        kind = _kind_of(c for _, m, _ in group for c in _module_classes(m))
        lead = next((n for n, _, h in group if h), group[0][0])   # the first heavy block
        if lead.isdigit():
            counters[kind] = counters.get(kind, 0) + 1
            lead = f"{kind}{counters[kind]}"
        segs.append((lead, kind, mod))
    names = _unique([n for n, _, _ in segs])
    kinds = dict(kinds or {})
    return [Segment(n, kinds.get(n, k), m) for n, (_, k, m) in zip(names, segs)]


# ------------------------------------------------------------------ torch.fx
class _Tracer(torch.fx.Tracer):
    def __init__(self, leaf_modules: tuple[type, ...]) -> None:
        super().__init__()
        self._leaves = leaf_modules

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, self._leaves) or super().is_leaf_module(m, qualname)


def _node_class(gm: torch.fx.GraphModule, node: torch.fx.Node, leaves: tuple[type, ...]) -> str:
    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        if leaves and isinstance(mod, leaves):    # a leaf block counts as compute-heavy
            kind = _kind_of(_module_classes(mod))
            return kind if kind in ("conv", "fc", "pool") else "heavy"
        return _leaf_class(mod)
    if node.op in ("call_function", "call_method"):
        name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
        if _HEAVY_FN.search(str(name)):
            s = str(name)
            return "pool" if "pool" in s else "fc" if "linear" in s else \
                "conv" if "conv" in s else "heavy"
    return "cheap"


def trace(module: nn.Module, leaf_modules: Iterable[type] = ()) -> torch.fx.GraphModule:
    """``module`` (put in eval mode first) traced by ``torch.fx``, dead code removed.

    Raises :class:`NotSplittableError` with fx's reason if it cannot be traced
    (control flow on tensor values, data-dependent shapes, non-torch calls on tensors).
    """
    module.eval()    # fx bakes self.training into F.dropout/F.batch_norm calls
    tracer = _Tracer(tuple(leaf_modules))
    try:
        graph = tracer.trace(module)
    except Exception as exc:  # fx raises TraceError, TypeError, NotImplementedError...
        raise NotSplittableError(
            f"torch.fx cannot trace {type(module).__name__}: {type(exc).__name__}: {exc}. "
            "Give the model as an nn.Sequential / list of blocks, or name the untraceable "
            "block classes in leaf_modules") from exc
    gm = torch.fx.GraphModule(tracer.root, graph, type(module).__name__)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


def fx_segments(module: nn.Module, input_shape: Sequence[int], split: str = "auto",
                leaf_modules: Iterable[type] = (),
                kinds: Mapping[str, str] | None = None) -> list[Segment]:
    """Cut an fx-traceable module into a chain of segments.

    The traced graph's nodes are taken in order; a cut after node ``n`` is allowed iff
    ``n``'s output is the only value computed so far that later nodes still need, and
    it is a tensor (shapes from one batch-1 pass on zeros of ``input_shape``).
    Parameters and values that do not depend on the input (``get_attr`` nodes and
    what is computed only from them) never block a cut: each segment recomputes what it
    needs. With ``split="auto"`` pieces without a compute-heavy op (conv, linear,
    matmul, pooling, a parametrised layer, a leaf module) are folded into the piece
    before them. Each segment is a ``torch.fx.GraphModule`` sharing the original
    module's layers (no copy of the weights).
    """
    from torch.fx.passes.shape_prop import ShapeProp

    leaves = tuple(leaf_modules)
    gm = trace(module, leaves)
    nodes = list(gm.graph.nodes)
    inputs = [n for n in nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise NotSplittableError(
            f"{type(module).__name__}.forward takes {len(inputs)} inputs; a partitioned model "
            "takes exactly one tensor")
    (x_node,) = inputs
    (out_node,) = [n for n in nodes if n.op == "output"]
    result = out_node.args[0]
    if not isinstance(result, torch.fx.Node):
        raise NotSplittableError(
            f"{type(module).__name__}.forward returns {type(result).__name__}; a partitioned "
            "model must return exactly one tensor")
    try:
        ShapeProp(gm).propagate(torch.zeros((1, *input_shape)))
    except Exception as exc:
        raise NotSplittableError(
            f"{type(module).__name__} fails on an input of shape (1, {', '.join(map(str, input_shape))}): "
            f"{type(exc).__name__}: {exc}") from exc

    # values that do not depend on the input: recomputed by each segment that uses them
    const: set[torch.fx.Node] = set()
    for n in nodes:
        if n.op == "get_attr" or (n.op in ("call_function", "call_method", "call_module")
                                  and all(a in const for a in n.all_input_nodes)):
            const.add(n)
    body = [n for n in nodes if n.op not in ("placeholder", "output") and n not in const]
    if not body or result is x_node or result in const:
        raise NotSplittableError(f"{type(module).__name__} has no layer that depends on its input")
    if body[-1] is not result:
        raise NotSplittableError(
            f"{type(module).__name__}.forward runs operations with side effects ({body[-1].name}) "
            "after computing its output")
    pos = {n: i for i, n in enumerate(body)}
    pos[x_node] = -1
    end = len(body)

    def last_use(n: torch.fx.Node) -> int:
        return max((end if u.op == "output" else pos[u]) for u in n.users) if n.users else pos[n]

    expiry: dict[int, int] = {}
    for n in [x_node, *body]:
        t = last_use(n)
        expiry[t] = expiry.get(t, 0) + 1
    live = 1 if last_use(x_node) > -1 else 0
    cuts: list[int] = []
    for i, n in enumerate(body[:-1]):
        live += 1                     # n's value is alive once computed ...
        live -= expiry.get(i, 0)      # ... and values whose last use is n die here
        meta = n.meta.get("tensor_meta")
        if live == 1 and last_use(n) > i and isinstance(meta, torch.fx.passes.shape_prop.TensorMetadata):
            cuts.append(i)
    bounds = [-1, *cuts, end - 1]
    chunks = [body[a + 1:b + 1] for a, b in zip(bounds, bounds[1:])]
    heavy = [any(_node_class(gm, n, leaves) != "cheap" for n in c) for c in chunks]
    groups = _fold(chunks, heavy) if split == "auto" else [[c] for c in chunks]

    segs: list[tuple[str, str, nn.Module]] = []
    prev_out = x_node
    for group in groups:
        part = [n for c in group for n in c]
        sub = _subgraph_module(gm, part, prev_out, part[-1], const)   # a cut's value: the last node
        classes = [_node_class(gm, n, leaves) for n in part]
        segs.append((_segment_name(gm, part, classes), _kind_of(classes), sub))
        prev_out = part[-1]
    names = _unique([s[0] for s in segs])
    kinds = dict(kinds or {})
    return [Segment(n, kinds.get(n, k), m) for n, (_, k, m) in zip(names, segs)]


def _subgraph_module(gm: torch.fx.GraphModule, part: list[torch.fx.Node], inp: torch.fx.Node,
                     out: torch.fx.Node, const: set[torch.fx.Node]) -> torch.fx.GraphModule:
    g = torch.fx.Graph()
    env: dict[torch.fx.Node, torch.fx.Node] = {inp: g.placeholder("x")}

    def arg(n: torch.fx.Node) -> torch.fx.Node:
        if n not in env:
            if n not in const:   # cannot happen for a valid cut; guard against fx surprises
                raise NotSplittableError(f"value {n.name} crosses a cut")
            env[n] = g.node_copy(n, arg)
        return env[n]

    for n in part:
        env[n] = g.node_copy(n, arg)
    g.output(env[out])
    g.lint()
    return torch.fx.GraphModule(gm, g, "Segment")


def _segment_name(gm: torch.fx.GraphModule, part: list[torch.fx.Node], classes: list[str]) -> str:
    heavy_mods = [n.target for n, c in zip(part, classes) if c != "cheap" and n.op == "call_module"]
    if heavy_mods:
        split = [t.split(".") for t in heavy_mods]
        common: list[str] = []
        for tokens in zip(*split):
            if len(set(tokens)) != 1:
                break
            common.append(tokens[0])
        if common:
            return ".".join(common)
    first = next((n for n, c in zip(part, classes) if c != "cheap"), part[-1])
    return first.name


# ------------------------------------------------------------------ building
def to_segments(built: Any, input_shape: Sequence[int], split: str = "auto",
                leaf_modules: Iterable[type] = (),
                kinds: Mapping[str, str] | None = None) -> list[Segment]:
    """Segments of whatever a builder returned (see the module docstring)."""
    if isinstance(built, PartitionedModel):
        return [Segment(n, k, m) for n, k, m in
                zip(built.segment_names, built.segment_kinds, built.segments)]
    if isinstance(built, (list, tuple)):
        if built and all(isinstance(s, Segment) for s in built):
            return list(built)
        return sequential_segments(built, split, kinds)
    if isinstance(built, nn.Sequential):
        return sequential_segments(built, split, kinds)
    if isinstance(built, nn.Module):
        return fx_segments(built, input_shape, split, leaf_modules, kinds)
    raise NotSplittableError(
        f"a model builder must return segments, an nn.Sequential, a list of blocks or an "
        f"nn.Module, got {type(built).__name__}")


def build_registered(spec: ModelSpec, seed: int = 0,
                     num_classes: int | None = None) -> PartitionedModel:
    """Build a registered model (see :func:`models.zoo.build_model`)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if num_classes is None:
            built = spec.builder()
        else:
            params = inspect.signature(spec.builder).parameters
            if "num_classes" not in params and not any(
                    p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
                raise ModelRegistrationError(
                    f"model {spec.name!r}: its builder takes no num_classes argument")
            built = spec.builder(num_classes=num_classes)
        if isinstance(built, PartitionedModel) and built.input_shape != spec.input_shape:
            raise ModelRegistrationError(
                f"model {spec.name!r}: builder's input_shape {built.input_shape} != registered "
                f"{spec.input_shape}")
        segments = to_segments(built, spec.input_shape, spec.split, spec.leaf_modules, spec.kinds)
        model = PartitionedModel(spec.name, segments, spec.input_shape)
        if spec.init == "torchvision":
            from models.zoo import _init_weights
            _init_weights(model)
    model.eval()
    try:
        out_shape = model.output_shape(model.num_segments)   # one pass: shapes, FLOPs, dtypes
    except ModelCheckError:
        raise
    except Exception as exc:
        raise ModelRegistrationError(
            f"model {spec.name!r} fails on an input of shape (1, {', '.join(map(str, spec.input_shape))}): "
            f"{type(exc).__name__}: {exc}") from exc
    model.num_classes = math.prod(out_shape)
    return model


# ------------------------------------------------------------------ checking
def check_model(model: PartitionedModel, batch: int = 2, rtol: float = 1e-4,
                atol: float = 1e-5, seed: int = 0) -> None:
    """Check what the testbed relies on; raise :class:`ModelCheckError` naming the point.

    * every point's tensor is one float32 tensor of ``output_shape(k)`` with the batch
      dimension in front (so a batch of ``batch`` works; a hard-coded batch of 1 fails);
    * split equivalence: ``run(run(x, 0, k), k, m) == run(x, 0, m)`` for every cut k;
    * each sample's output does not depend on the others in the batch;
    * the wire format (``protocol/wire.py``) can carry every point's batch-1 tensor and
      the model name (round trip of a TASK frame).
    """
    m = model.num_segments
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, *model.input_shape), generator=gen)
    acts = [x]
    for k in range(1, m + 1):
        try:
            y = model.run(acts[-1], k - 1, k)
        except Exception as exc:
            raise ModelCheckError(f"{model.name}: segment {k} ({model.segment_names[k - 1]}) "
                                  f"fails on a batch of {batch}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(y, torch.Tensor):
            raise ModelCheckError(f"{model.name}: point {k} is a {type(y).__name__}, not one tensor")
        if y.dtype != torch.float32:
            raise ModelCheckError(f"{model.name}: point {k} is {y.dtype}, not torch.float32")
        if tuple(y.shape) != (batch, *model.output_shape(k)):
            raise ModelCheckError(
                f"{model.name}: point {k} ({model.point_names[k]}) has shape {tuple(y.shape)} for a "
                f"batch of {batch}, expected {(batch, *model.output_shape(k))} (batch dimension "
                "hard-coded?)")
        acts.append(y)
    for k in range(m):
        got = model.run(acts[k], k, m)
        if not torch.allclose(got, acts[m], rtol=rtol, atol=atol):
            raise ModelCheckError(
                f"{model.name}: cutting at point {k} ({model.point_names[k]}) changes the output "
                f"(max abs diff {float((got - acts[m]).abs().max()):.3g})")
    one = model.run(x[:1], 0, m)
    if not torch.allclose(one, acts[m][:1], rtol=rtol, atol=atol):
        raise ModelCheckError(f"{model.name}: a sample's output depends on the rest of the batch")
    _check_wire(model, [a[:1] for a in acts])


def _check_wire(model: PartitionedModel, acts: list[torch.Tensor]) -> None:
    try:
        from protocol import wire
    except ImportError:      # models/ used without the protocol package
        return
    m = model.num_segments
    if m > 0xFFFF:
        raise ModelCheckError(f"{model.name}: {m} segments; the wire format's points are u16")
    for k, t in enumerate(acts[:-1]):
        hops = (wire.Hop("127.0.0.1", 1, 0, k), wire.Hop("127.0.0.1", 2, k, m)) if k else \
            (wire.Hop("127.0.0.1", 2, 0, m),)
        frame = wire.Frame(msg_type=wire.TASK, task_id=bytes(16), model=model.name, cut=k,
                           hop_index=len(hops) - 1, hops=hops, reply_to=("127.0.0.1", 3))
        try:
            back = wire.decode(wire.encode(frame, t.contiguous()))
        except (ValueError, wire.FrameError) as exc:
            raise ModelCheckError(
                f"{model.name}: the wire format cannot carry point {k} ({tuple(t.shape)}): {exc}") from exc
        if back.model != model.name or back.shape != tuple(t.shape):
            raise ModelCheckError(f"{model.name}: point {k} does not survive a wire round trip")
