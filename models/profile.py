"""The per-(model, host class) profile JSON: schema, validation, load and save.

Schema 1 (all sizes bytes, all times seconds)::

    {"schema": 1, "model": str, "host_class": str, "cpu_share": float (cores, > 0),
     "torch_threads": int,
     "points":   [{"index", "name", "out_bytes", "shape"}, ...]            # m+1 entries
     "segments": [{"index", "name", "kind", "flops", "params", "in_bytes",
                   "out_bytes", "median_s", "p90_s", "repeats"}, ...]       # m entries
     "total_median_s": float, "measured_full_s": float, "created": str, "machine": str}

Keys are exact: a missing or unknown key is an error.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Union

SCHEMA_VERSION = 1

TOP_KEYS = ("schema", "model", "host_class", "cpu_share", "torch_threads", "points",
            "segments", "total_median_s", "measured_full_s", "created", "machine")
POINT_KEYS = ("index", "name", "out_bytes", "shape")
SEGMENT_KEYS = ("index", "name", "kind", "flops", "params", "in_bytes", "out_bytes",
                "median_s", "p90_s", "repeats")


class ProfileError(ValueError):
    """A profile does not follow schema 1; the message names the offending field."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v))


def _need(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise ProfileError(f"{where}: {what}")


def _exact_keys(obj: Any, keys: tuple[str, ...], where: str) -> None:
    _need(isinstance(obj, Mapping), where, f"must be an object, got {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    unknown = sorted(set(obj) - set(keys))
    _need(not missing, where, f"missing key(s) {missing}")
    _need(not unknown, where, f"unknown key(s) {unknown}")


def validate_profile(p: Any) -> None:
    """Raise :class:`ProfileError` unless ``p`` is a well-formed, self-consistent profile."""
    _exact_keys(p, TOP_KEYS, "profile")
    _need(p["schema"] == SCHEMA_VERSION and _is_int(p["schema"]), "schema",
          f"unsupported schema {p['schema']!r} (this code reads {SCHEMA_VERSION})")
    for key in ("model", "host_class", "created", "machine"):
        _need(isinstance(p[key], str), key, "must be a string")
    _need(p["model"] != "", "model", "must not be empty")
    _need(_is_num(p["cpu_share"]) and p["cpu_share"] > 0, "cpu_share",
          "must be a number of cores > 0")
    _need(_is_int(p["torch_threads"]) and p["torch_threads"] >= 1, "torch_threads",
          "must be an int >= 1")
    for key in ("total_median_s", "measured_full_s"):
        _need(_is_num(p[key]) and p[key] >= 0, key, "must be a number of seconds >= 0")

    points, segments = p["points"], p["segments"]
    _need(isinstance(points, list) and len(points) >= 2, "points",
          "must be a list of at least 2 points")
    _need(isinstance(segments, list), "segments", "must be a list")
    _need(len(segments) == len(points) - 1, "segments",
          f"{len(segments)} segments but {len(points)} points (need points = segments + 1)")

    for k, pt in enumerate(points):
        where = f"points[{k}]"
        _exact_keys(pt, POINT_KEYS, where)
        _need(pt["index"] == k and _is_int(pt["index"]), f"{where}.index", f"must be {k}")
        _need(isinstance(pt["name"], str) and pt["name"], f"{where}.name",
              "must be a non-empty string")
        shape = pt["shape"]
        _need(isinstance(shape, list) and shape and all(_is_int(d) and d > 0 for d in shape),
              f"{where}.shape", "must be a non-empty list of positive ints")
        _need(_is_int(pt["out_bytes"]) and pt["out_bytes"] == 4 * math.prod(shape),
              f"{where}.out_bytes", f"must be 4 * prod(shape) = {4 * math.prod(shape)}")
    _need(points[0]["name"] == "input", "points[0].name", "must be 'input'")
    _need(points[-1]["name"] == "output", f"points[{len(points) - 1}].name", "must be 'output'")

    m = len(segments)
    for i, seg in enumerate(segments, start=1):
        where = f"segments[{i - 1}]"
        _exact_keys(seg, SEGMENT_KEYS, where)
        _need(seg["index"] == i and _is_int(seg["index"]), f"{where}.index", f"must be {i}")
        for key in ("name", "kind"):
            _need(isinstance(seg[key], str) and seg[key], f"{where}.{key}",
                  "must be a non-empty string")
        if i < m:
            _need(seg["name"] == points[i]["name"], f"{where}.name",
                  f"must equal points[{i}].name {points[i]['name']!r}")
        for key in ("flops", "params"):
            _need(_is_int(seg[key]) and seg[key] >= 0, f"{where}.{key}", "must be an int >= 0")
        _need(seg["in_bytes"] == points[i - 1]["out_bytes"], f"{where}.in_bytes",
              f"must equal points[{i - 1}].out_bytes")
        _need(seg["out_bytes"] == points[i]["out_bytes"], f"{where}.out_bytes",
              f"must equal points[{i}].out_bytes")
        for key in ("median_s", "p90_s"):
            _need(_is_num(seg[key]) and seg[key] >= 0, f"{where}.{key}",
                  "must be a number of seconds >= 0")
        _need(seg["p90_s"] >= seg["median_s"], f"{where}.p90_s", "must be >= median_s")
        _need(_is_int(seg["repeats"]) and seg["repeats"] >= 1, f"{where}.repeats",
              "must be an int >= 1")


PathOrDict = Union[str, os.PathLike, Mapping[str, Any]]


def load_profile(path_or_dict: PathOrDict) -> dict[str, Any]:
    """Load (from a JSON file path) or copy (from a mapping) a profile and validate it.

    Raises :class:`ProfileError` with the offending field for any schema violation,
    and for unreadable files or invalid JSON.
    """
    if isinstance(path_or_dict, Mapping):
        data = copy.deepcopy(dict(path_or_dict))
        source = "<dict>"
    else:
        source = os.fspath(path_or_dict)
        try:
            with open(source, encoding="utf-8") as fh:
                data = json.load(fh)
        except OSError as exc:
            raise ProfileError(f"{source}: cannot read profile: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise ProfileError(f"{source}: not valid JSON: {exc}") from exc
    try:
        validate_profile(data)
    except ProfileError as exc:
        raise ProfileError(f"{source}: {exc}") from None
    return data


def save_profile(profile: Mapping[str, Any], path: Union[str, os.PathLike]) -> Path:
    """Validate ``profile`` and write it as indented JSON (parents created)."""
    validate_profile(profile)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(profile, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def profile_path(root: Union[str, os.PathLike], host_class: str, model: str) -> Path:
    """``<root>/<host_class>/<model>.json``."""
    return Path(root) / host_class / f"{model}.json"
