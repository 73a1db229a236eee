#!/usr/bin/env python3
"""Train the SDN-CEP DQN in the simulator; every ``Args`` field is a flag.

    nice -n 10 .venv/bin/python scripts/train_agent.py --total-episodes 600 --learning-rate 0.001

Writes ``<out_dir>/<exp_name>.pt`` (state_dict), ``.json`` (metadata) and ``.csv``
(one row per episode).  ``--config cfg.yaml`` loads cost/sim settings (unknown keys
are refused).  ``--model NAME`` may be any model with a profile under ``--profiles``
(a model of your own: docs/howto/add-a-model.md).
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # repo root, relative to this file

from agents import dqn  # noqa: E402
from agents.calibration import ProfileStore  # noqa: E402
from agents.config import CoreConfig, load_config  # noqa: E402


def field_docs(cls) -> dict[str, str]:
    """Docstrings written under dataclass fields (cleanrl/tyro style)."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for a, b in zip(body, body[1:]):
        if isinstance(a, ast.AnnAssign) and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant):
            docs[a.target.id] = str(b.value.value)  # type: ignore[union-attr]
    return docs


def parser_for(cls) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    docs = field_docs(cls)

    def help_of(f):
        return docs.get(f.name, "").replace("%", "%%")   # argparse formats help with %

    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        if f.type in (bool, "bool"):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_of(f))
        else:
            typ = {"int": int, "float": float, "str": str}.get(str(f.type), type(f.default))
            ap.add_argument(flag, type=typ, default=f.default, help=help_of(f))
    ap.add_argument("--config", type=str, default=None, help="YAML/JSON config with cost/sim sections")
    ap.add_argument("--profiles", type=str, default=None,
                    help="profiles root (<root>/<host_class>/<model>.json); default: the repo's profiles/; "
                         "'synthetic' for the built-in synthetic profiles only")
    ap.add_argument("--predictor", type=str, default=None,
                    help="complexity predictor JSON; its held-out q values become the task pool")
    return ap


def make_store(root: str | None) -> ProfileStore:
    if root == "synthetic":
        return ProfileStore(None)
    return ProfileStore() if root is None else ProfileStore(root)


def main(argv=None) -> int:
    ns = parser_for(dqn.Args).parse_args(argv)
    kw = {f.name: getattr(ns, f.name) for f in dataclasses.fields(dqn.Args)}
    try:
        store = make_store(ns.profiles)   # first: a model of your own is known by its profile
        args = dqn.Args(**kw)
        cfg = load_config(ns.config) if ns.config else CoreConfig()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.model not in store.models():
        print(f"error: no profile of model {args.model!r} under {store.root or '(synthetic only)'}; "
              f"profiled: {', '.join(store.models())}. Profile it first "
              "(python -m scripts.profile_models --plugin ... --model NAME, docs/howto/add-a-model.md)",
              file=sys.stderr)
        return 2
    q_pool = None
    if ns.predictor:
        from agents.complexity import ComplexityPredictor
        import numpy as np
        qs = (ComplexityPredictor.load(ns.predictor).meta or {}).get("q_holdout", [])
        q_pool = np.array(qs) if len(qs) else None
    t0 = time.time()
    agent, rows = dqn.train(args, cfg.cost, store, q_pool, cfg.sim)
    wall = time.time() - t0
    last = rows[-50:]
    print(f"trained {len(rows)} episodes, {rows[-1]['steps']} steps in {wall:.1f}s; "
          f"last-50 mean reward {sum(r['mean_reward'] for r in last) / len(last):.4f}; "
          f"checkpoint {Path(args.out_dir) / (args.exp_name + '.pt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
