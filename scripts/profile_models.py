"""Profile the model zoo per host class, and evaluate the latency predictor.

Run from the repository root:

    .venv/bin/python -m scripts.profile_models --host-class cloud edge-large edge-small
    .venv/bin/python -m scripts.profile_models --host-class edge-small --models vgg16 --repeats 3
    .venv/bin/python -m scripts.profile_models --host-class lab --cpu-share 0.3
    .venv/bin/python -m scripts.profile_models --evaluate \
        [--fit-out profiles/latency_predictor.json]
    .venv/bin/python -m scripts.profile_models --plugin my_models --model tinycnn \
        --host-class cloud edge-large edge-medium edge-small     # a model of your own

A CPU share below one core is applied with a cgroup-v1 CPU quota (needs root).
Profiles are written to ``<out>/<host_class>/<model>.json``. ``--plugin`` imports a
module (``pkg.module``, ``pkg.module:function`` or ``path/to/file.py``) that registers
models with ``models.zoo.register_model`` (docs/howto/add-a-model.md).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from models import MODEL_NAMES, build_model
from models.custom import ModelCheckError, ModelRegistrationError, check_model, load_plugin
from models.zoo import model_names
from models.host_classes import HOST_CLASSES
from models.profile import load_profile, profile_path, save_profile
from models.profiler import (DEFAULT_PERIOD_US, CgroupUnavailableError, cpu_quota,
                             default_profiles_dir, format_profile_table, profile_model)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host-class", nargs="+", default=[], metavar="NAME",
                    help=f"host class(es) to profile; known: {', '.join(HOST_CLASSES)}")
    ap.add_argument("--cpu-share", type=float, default=None, metavar="F",
                    help="CPU share in cores (overrides the host class's share; "
                         "needed for a host class not in models/host_classes.py)")
    ap.add_argument("--models", "--model", default=",".join(MODEL_NAMES),
                    help="comma-separated model names: built-in or registered by a --plugin "
                         "(default: the built-in models)")
    ap.add_argument("--plugin", action="append", default=[], metavar="SPEC",
                    help="import a model plug-in first (pkg.module, pkg.module:function or "
                         "path/to/file.py); repeatable")
    ap.add_argument("--no-check", action="store_true",
                    help="skip models.check_model (split equivalence, batching, wire format) "
                         "before profiling a registered model")
    ap.add_argument("--list-models", action="store_true",
                    help="print the built-in and registered models and exit")
    ap.add_argument("--repeats", type=int, default=15, help="timing samples per segment")
    ap.add_argument("--vgg-repeats", type=int, default=None,
                    help="samples per segment for vgg16 (default: --repeats)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls before sampling")
    ap.add_argument("--min-sample-ms", type=float, default=50.0,
                    help="each sample times back-to-back calls for at least this long")
    ap.add_argument("--clock", choices=("auto", "wall", "cpu"), default="auto",
                    help="wall: wall clock; cpu: thread CPU time (a dedicated core's "
                         "latency on a loaded machine; only for shares >= 1); "
                         "auto: cpu for shares >= 1, wall below (default)")
    ap.add_argument("--period-us", type=int, default=DEFAULT_PERIOD_US,
                    help="CFS period of the quota cgroup")
    ap.add_argument("--out", type=Path, default=default_profiles_dir(),
                    help="profiles root directory")
    ap.add_argument("--quiet", action="store_true", help="no progress bar or tables")
    ap.add_argument("--evaluate", action="store_true",
                    help="evaluate the latency predictor on the profiles under --out")
    ap.add_argument("--fit-out", type=Path, default=None,
                    help="with --evaluate: also fit on all profiles and save the predictor")
    args = ap.parse_args(argv)
    for spec in args.plugin:
        try:
            load_plugin(spec)
        except ModelRegistrationError as exc:
            ap.error(f"--plugin {spec}: {exc}")
    if args.list_models:
        return args
    if not args.host_class and not args.evaluate:
        ap.error("give --host-class NAME... to profile, or --evaluate")
    if args.cpu_share is not None and len(args.host_class) != 1:
        ap.error("--cpu-share applies to exactly one --host-class")
    if args.cpu_share is not None and not args.cpu_share > 0:
        ap.error("--cpu-share must be > 0")
    for hc in args.host_class:
        if hc not in HOST_CLASSES and args.cpu_share is None:
            ap.error(f"unknown host class {hc!r} (known: {', '.join(HOST_CLASSES)}); "
                     "give --cpu-share for a new one")
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    known = model_names()
    unknown = [m for m in args.models if m not in known]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; valid: {', '.join(known)} "
                 "(a model of your own needs --plugin, see docs/howto/add-a-model.md)")
    return args


def _check_registered(args: argparse.Namespace) -> int:
    """check_model every registered (non-built-in) model asked for; 0 if all pass."""
    if args.no_check:
        return 0
    for name in args.models:
        if name in MODEL_NAMES:
            continue
        try:
            check_model(build_model(name, seed=0))
        except (ModelCheckError, ModelRegistrationError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not args.quiet:
            print(f"{name}: check_model passed", flush=True)
    return 0


def _profile_host_class(args: argparse.Namespace, host_class: str, share: float) -> None:
    for name in args.models:
        model = build_model(name, seed=0)
        repeats = args.vgg_repeats if (name == "vgg16" and args.vgg_repeats) else args.repeats
        clock = args.clock if args.clock != "auto" else ("cpu" if share >= 1 else "wall")
        prof = profile_model(model, host_class, share, repeats=repeats, warmup=args.warmup,
                             min_sample_s=args.min_sample_ms / 1e3, progress=not args.quiet,
                             clock=clock)
        path = save_profile(prof, profile_path(args.out, host_class, name))
        if not args.quiet:
            print(format_profile_table(prof))
            print(f"    -> {path}\n", flush=True)
        del model


def _evaluate(args: argparse.Namespace) -> None:
    from models.latency_predictor import (LatencyPredictor, evaluate_predictor,
                                          format_evaluation)
    paths = sorted(args.out.glob("*/*.json"))
    profiles = [load_profile(p) for p in paths]
    if not profiles:
        raise SystemExit(f"no profiles under {args.out}")
    print(format_evaluation(evaluate_predictor(profiles)))
    if args.fit_out is not None:
        LatencyPredictor().fit(profiles).save(args.fit_out)
        print(f"predictor fitted on {len(profiles)} profiles -> {args.fit_out}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.list_models:
        for name in model_names():
            print(name)
        return 0
    if args.host_class and _check_registered(args):
        return 2
    # turn SIGTERM into SystemExit so the quota cgroup is removed on the way out
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    for hc in args.host_class:
        share = args.cpu_share if args.cpu_share is not None else HOST_CLASSES[hc]
        if share < 1.0:
            try:
                with cpu_quota(share, period_us=args.period_us) as group:
                    if not args.quiet:
                        print(f"[{hc}] cpu quota {share:g} core(s) in {group}", flush=True)
                    _profile_host_class(args, hc, share)
            except CgroupUnavailableError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        else:
            # torch runs one thread, so a share of >= 1 core needs no quota
            _profile_host_class(args, hc, share)
    if args.evaluate:
        _evaluate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
