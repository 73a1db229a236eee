"""``sdncep check FILE...``: validate configs and checkpoints before a long run.

Each file's kind is told by its name and content: a topology YAML (topologies/spec.py
keys), a simulator config (YAML/JSON with ``cost``/``sim``/``predictor`` sections),
a controller config (INI with an ``[sdncep]`` section, as given to ``ryu-manager
--config-file``) or an agent checkpoint (``.pt`` with its ``.json``). Every key is
checked on its own, so one run lists every problem, each as ``file:line: field:
message``. Files given together are also checked against each other: an agent's edge
slots against the topology's edge nodes, its model against the profiles and the
models the workers serve, a simulator config against the agent trained on it.
Exit status 1 if any error was found. The controller runs the same checks on its
own settings at start-up and refuses to start on an error.
"""
from __future__ import annotations

import argparse
import configparser
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    message: str
    line: int | None = None
    severity: str = ERROR

    def __str__(self):
        where = f"{self.file}:{self.line}" if self.line else self.file
        tag = "" if self.severity == ERROR else f"{self.severity}: "
        return f"{where}: {tag}{self.field}: {self.message}" if self.field else f"{where}: {tag}{self.message}"


@dataclass
class Checked:
    """What was read from one file (None if it could not be read) and its problems."""
    path: str
    kind: str
    value: object = None
    problems: list = None
    derived: bool = False     # named by another file (a controller config), not on the command line


# -- reading ------------------------------------------------------------------------
def _yaml_lines(text):
    """Line (1-based) of every mapping key, as dotted paths ('sim.edges')."""
    import yaml
    lines = {}

    def walk(node, prefix):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                path = f"{prefix}{key.value}"
                lines[path] = key.start_mark.line + 1
                walk(value, path + ".")
    try:
        walk(yaml.compose(text), "")
    except yaml.YAMLError:
        pass
    return lines


def _read_mapping(path, problems):
    """(mapping, key lines) of a YAML or JSON file, or (None, {}) with a problem."""
    import yaml
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(str(path), "", f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
        return None, {}
    except OSError as exc:
        problems.append(Problem(str(path), "", f"cannot read: {exc.strerror or exc}"))
        return None, {}
    try:
        data = json.loads(text) if str(path).endswith(".json") else (yaml.safe_load(text) or {})
    except (ValueError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(Problem(str(path), "", f"not valid {'JSON' if str(path).endswith('.json') else 'YAML'}: "
                                f"{getattr(exc, 'problem', None) or exc}", mark.line + 1 if mark else None))
        return None, {}
    if not isinstance(data, dict):
        problems.append(Problem(str(path), "", f"expected a mapping of keys, got {type(data).__name__}"))
        return None, {}
    return data, ({} if str(path).endswith(".json") else _yaml_lines(text))


def _each_key(cls, data, path, lines, prefix, problems, error_types, build=None):
    """Check every key of ``data`` against dataclass ``cls`` alone, then all together."""
    build = build or (lambda kw: cls(**kw))
    known = {f.name for f in fields(cls)}
    good = {}
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in known:
            problems.append(Problem(path, where, f"unknown key; known: {', '.join(sorted(known))}", lines.get(where)))
            continue
        try:
            build({key: value})
        except error_types as exc:
            problems.append(Problem(path, where, str(exc), lines.get(where)))
            continue
        good[key] = value
    try:
        return build(good)
    except error_types as exc:        # keys that are fine alone but not together
        problems.append(Problem(path, prefix.rstrip(".") or "", str(exc)))
        return None


def check_topology(path):
    from topologies.spec import SpecError, TopologySpec
    problems = []
    data, lines = _read_mapping(path, problems)
    if data is None:
        return Checked(str(path), "topology", None, problems)
    spec = _each_key(TopologySpec, data, str(path), lines, "", problems, (SpecError, TypeError, ValueError))
    if spec is not None:
        try:
            spec.check_budget()
        except SpecError as exc:
            problems.append(Problem(str(path), "compute_budget", str(exc)))
    return Checked(str(path), "topology", spec, problems)


def check_sim_config(path):
    from agents import config as core
    problems = []
    data, lines = _read_mapping(path, problems)
    if data is None:
        return Checked(str(path), "simulator config", None, problems)
    sections = {"cost": core.CostConfig, "sim": core.SimConfig, "predictor": core.PredictorConfig}
    built = {}
    for name, value in data.items():
        if name not in sections:
            problems.append(Problem(str(path), name, f"unknown section; known: {', '.join(sections)}", lines.get(name)))
            continue
        if not isinstance(value, dict):
            problems.append(Problem(str(path), name, "must be a mapping", lines.get(name)))
            continue
        cls = sections[name]
        built[name] = _each_key(cls, value, str(path), lines, f"{name}.", problems,
                                (core.ConfigError, TypeError, ValueError),
                                build=lambda kw, cls=cls, name=name: core._build(cls, kw, name))
    config = None
    if all(v is not None for v in built.values()):
        config = core.CoreConfig(**{k: v for k, v in built.items()})
    return Checked(str(path), "simulator config", config, problems)


def _parse_option(kind, text):
    if kind is bool:
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            raise ValueError(f"must be true or false, got {text!r}")
        return lowered in ("true", "yes", "1", "on")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"must be {kind.__name__}, got {text!r}") from None


def check_controller_config(path, check_settings=True):
    """An INI file for ``ryu-manager --config-file``: the [sdncep] section; with
    ``check_settings`` also the files and plug-ins it names (:func:`settings_problems`)."""
    from controller.config import ConfigError, ControllerConfig
    problems, path = [], str(path)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        problems.append(Problem(path, "", f"cannot read as an INI file: {exc}"))
        return Checked(path, "controller config", None, problems)
    if not parser.has_section("sdncep"):
        problems.append(Problem(path, "[sdncep]", "no [sdncep] section: every setting keeps its default",
                                severity=WARNING))
        return Checked(path, "controller config", ControllerConfig(), problems)
    lines = _ini_lines(path)
    kinds = {f.name: f.type if isinstance(f.type, type) else type(f.default) for f in fields(ControllerConfig)}
    values = {}
    for key, text in parser.items("sdncep", raw=True):
        if key in parser.defaults():
            continue
        where = f"sdncep.{key}"
        if key not in kinds:
            problems.append(Problem(path, where, f"unknown option (ryu-manager would ignore it); known: "
                                    f"{', '.join(sorted(kinds))}", lines.get(key)))
            continue
        try:
            value = _parse_option(kinds[key], text)
            ControllerConfig(**{key: value})
        except (ValueError, ConfigError) as exc:
            problems.append(Problem(path, where, str(exc), lines.get(key)))
            continue
        values[key] = value
    config = ControllerConfig(**values)
    if check_settings:
        problems += [Problem(path, f"sdncep.{p.field}", p.message, lines.get(p.field))
                     for p in settings_problems(config)]
    return Checked(path, "controller config", config, problems)


def _ini_lines(path):
    lines, section = {}, None
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        text = raw.strip()
        if text.startswith("["):
            section = text.strip("[]").strip()
        elif section == "sdncep" and "=" in text and not text.startswith(("#", ";")):
            lines.setdefault(text.split("=", 1)[0].strip(), number)
    return lines


def _predictor_problem(path):
    """Why the complexity predictor at ``path`` cannot be used (None: it can, or none named)."""
    if not path:
        return None
    try:
        from agents.complexity import ComplexityPredictor
        ComplexityPredictor.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{path}: cannot load ({exc})"
    return None


def settings_problems(config):
    """What the controller itself refuses at start-up: files it names and plug-ins."""
    from agents.registry import PluginError, load_plugin
    problems, models = [], {}
    for path in filter(None, (p.strip() for p in config.agent_checkpoint.split(","))):
        checked = check_checkpoint(path)
        problems += [Problem("", "agent_checkpoint", f"{path}: {p.field + ': ' if p.field else ''}{p.message}")
                     for p in checked.problems if p.severity == ERROR]
        if checked.value:
            model = checked.value["model"]
            if model in models:
                problems.append(Problem("", "agent_checkpoint", f"{models[model]} and {path} are both agents "
                                        f"for model {model!r}"))
            models[model] = path
    why = _predictor_problem(config.predictor_path)
    if why:
        problems.append(Problem("", "predictor_path", why))
    if config.profiles_dir and not Path(config.profiles_dir).is_dir():
        problems.append(Problem("", "profiles_dir", f"{config.profiles_dir} is not a folder"))
    for name in filter(None, (n.strip() for n in config.policies.split(","))):
        try:
            load_plugin(name)
        except (PluginError, TypeError, ValueError) as exc:
            problems.append(Problem("", "policies", str(exc)))
    return problems


def usable_settings(config):
    """``config`` without the files and plug-ins it cannot use, and {method: why} for the
    methods that leaves out (the controller's ``on_bad_settings = serve_baselines``)."""
    from dataclasses import replace

    from agents.registry import PluginError, load_plugin
    unavailable, agents = {}, []
    for path in filter(None, (p.strip() for p in config.agent_checkpoint.split(","))):
        bad = [p for p in check_checkpoint(path).problems if p.severity == ERROR]
        if bad:
            why = f"agent checkpoint {path}: {bad[0].message}"
            for method in ("sdn-cep", "sdn-cep-dqn"):
                unavailable.setdefault(method, why)
        else:
            agents.append(path)
    if unavailable:          # an agent per model: without one of them, sdn-cep is not what was asked for
        agents = []
    plugins = []
    for name in filter(None, (n.strip() for n in config.policies.split(","))):
        try:
            load_plugin(name)
            plugins.append(name)
        except (PluginError, TypeError, ValueError) as exc:
            unavailable[name] = str(exc)
    predictor = "" if _predictor_problem(config.predictor_path) else config.predictor_path
    return replace(config, agent_checkpoint=",".join(agents), policies=",".join(plugins),
                   predictor_path=predictor), unavailable


CHECKPOINT_KEYS = ("obs_dim", "n_actions", "hidden", "model", "m", "n_edge")


def check_checkpoint(path):
    """An agent checkpoint: its JSON metadata and its weights, read without unpickling."""
    path = Path(path)
    pt, meta_path = (path, path.with_suffix(".json")) if path.suffix != ".json" else (path.with_suffix(".pt"), path)
    problems, meta = [], None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problems.append(Problem(str(meta_path), "", f"agent metadata unreadable: {exc}"))
        return Checked(str(pt), "agent checkpoint", None, problems)
    missing = [k for k in CHECKPOINT_KEYS if k not in meta]
    if missing:
        problems.append(Problem(str(meta_path), ", ".join(missing), "missing from the agent metadata"))
        return Checked(str(pt), "agent checkpoint", None, problems)
    from agents.codec import ActionCodec
    from agents.features import obs_dim
    try:
        wanted = (obs_dim(meta["m"], meta["n_edge"]), ActionCodec(meta["m"], meta["n_edge"],
                                                                 bool(meta.get("two_hop"))).n)
    except (TypeError, ValueError) as exc:
        problems.append(Problem(str(meta_path), "m, n_edge", f"not a valid action space: {exc}"))
        return Checked(str(pt), "agent checkpoint", None, problems)
    if (meta["obs_dim"], meta["n_actions"]) != wanted:
        problems.append(Problem(str(meta_path), "obs_dim, n_actions",
                                f"the agent sees {meta['obs_dim']} features and has {meta['n_actions']} actions; "
                                f"this code's observation and actions for m={meta['m']}, {meta['n_edge']} edge "
                                f"nodes are {wanted[0]} and {wanted[1]}: it was trained on an older "
                                f"observation, retrain it (`sdncep train`)"))
    try:
        import torch
        state = torch.load(pt, weights_only=True, map_location="cpu")   # no arbitrary unpickling
        from agents.dqn import QNetwork
        QNetwork(meta["obs_dim"], meta["n_actions"], meta["hidden"]).load_state_dict(state)
    except FileNotFoundError:
        problems.append(Problem(str(pt), "", "agent weights missing"))
    except Exception as exc:  # noqa: BLE001 -- torch raises many kinds for a bad file; all mean "unusable"
        problems.append(Problem(str(pt), "", f"agent weights unreadable or not this network "
                                f"(truncated or another file?): {type(exc).__name__}: {str(exc).split('. ')[0][:160]}"))
    return Checked(str(pt), "agent checkpoint", meta, problems)


# -- across files -------------------------------------------------------------------
def consistency(checked, store=None):
    from agents.calibration import ProfileStore
    store = store or ProfileStore()
    problems = []
    agents = [c for c in checked if c.kind == "agent checkpoint" and c.value]
    topologies = [c for c in checked if c.kind == "topology" and c.value]
    sims = [c for c in checked if c.kind == "simulator config" and c.value]
    for agent in agents:
        meta = agent.value
        if meta["model"] not in store.models():
            problems.append(Problem(agent.path, "model", f"no profile for model {meta['model']!r} under "
                                    f"{store.root}; profile it with `sdncep profile --models {meta['model']}`"))
        slots = list(meta.get("edge_names") or (f"es{i + 1}" for i in range(meta["n_edge"])))
        for topo in topologies:
            edges = [f"e{i + 1}" for i in range(topo.value.edges)]
            if len(edges) > len(slots) or (meta.get("edge_names") and set(edges) - set(slots)):
                problems.append(Problem(agent.path, "edge_names",
                                        f"the agent has slots for {slots}; topology {topo.path} has edge nodes "
                                        f"{edges}: nodes without a slot cannot be planned (retrain with "
                                        f"`sdncep train --config ...` on a matching sim config)"))
            served = topo.value.served_models() if hasattr(topo.value, "served_models") else None
            if served and meta["model"] not in served:
                problems.append(Problem(agent.path, "model", f"topology {topo.path} serves {sorted(served)}, "
                                        f"not {meta['model']!r}", severity=WARNING))
        for sim in sims:
            names = [e.name for e in sim.value.sim.edges]
            if names != slots[:len(names)] or len(names) != len(slots):
                problems.append(Problem(agent.path, "edge_names", f"agent slots {slots} differ from the edges "
                                        f"{names} of {sim.path}", severity=WARNING))
    return problems


def kind_of(path):
    path = Path(path)
    if path.suffix == ".pt":
        return "agent checkpoint"
    if path.suffix in (".conf", ".ini", ".cfg"):
        return "controller config"
    if path.suffix == ".json" and path.with_suffix(".pt").exists():
        return "agent checkpoint"
    if path.suffix in (".yaml", ".yml", ".json"):
        data, _ = _read_mapping(path, [])
        if isinstance(data, dict) and data and set(data) <= {"cost", "sim", "predictor"}:
            return "simulator config"
        return "topology"
    return None


def check_files(paths):
    checked = []
    for path in paths:
        kind = kind_of(path)
        if not Path(path).exists():
            checked.append(Checked(str(path), kind or "file", None, [Problem(str(path), "", "no such file")]))
        elif kind == "agent checkpoint":
            checked.append(check_checkpoint(path))
        elif kind == "controller config":
            config = check_controller_config(path)
            checked.append(config)
            if config.value is not None:          # its checkpoints take part in the cross-checks
                for name in filter(None, (p.strip() for p in config.value.agent_checkpoint.split(","))):
                    agent = check_checkpoint(name)
                    agent.problems, agent.derived = [], True   # reported under agent_checkpoint
                    checked.append(agent)
        elif kind == "simulator config":
            checked.append(check_sim_config(path))
        elif kind == "topology":
            checked.append(check_topology(path))
        else:
            checked.append(Checked(str(path), "file", None, [Problem(
                str(path), "", "unknown kind of file: give a topology or simulator config (.yaml/.json), a "
                "controller config (.conf/.ini) or an agent checkpoint (.pt)")]))
    return checked


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sdncep check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", help="files to check (default: the shipped configs and checkpoints)")
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parent.parent
    files = args.files or [str(repo / "configs" / "testbed_sim.yaml")] + sorted(
        str(p) for p in (repo / "checkpoints").glob("sdncep-*.pt"))
    checked = check_files(files)
    problems = [p for c in checked for p in c.problems] + consistency(checked)
    failed = {p.file for p in problems if p.severity == ERROR}
    for c in checked:
        if not c.derived and c.path not in failed and not any(p.severity == ERROR for p in c.problems):
            print(f"ok: {c.path} ({c.kind})")
    sys.stdout.flush()
    for problem in problems:
        print(problem, file=sys.stderr)
    sys.stderr.flush()
    errors = sum(p.severity == ERROR for p in problems)
    print(f"{len(files)} file(s) checked: {errors} error(s), {len(problems) - errors} warning(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
