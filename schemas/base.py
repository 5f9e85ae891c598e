"""Strict pydantic base and the YAML loader every config goes through.

Configs are strict so that a typo (``lerning_rate``) is an error that names the key and the
file instead of a silently ignored default.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from mmupt.errors import ConfigError
from mmupt.textio import read_text

T = TypeVar("T", bound="StrictModel")


class StrictModel(BaseModel):
    """Base for every config section: unknown keys and lossy coercions are errors."""

    model_config = ConfigDict(extra="forbid", strict=False, validate_assignment=True, frozen=False)

    def config_hash(self) -> str:
        """A stable hash of the resolved config: part of every artifact's cache key."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def flat(self, prefix: str = "") -> dict[str, Any]:
        """Flattened ``a.b.c -> value`` view, for logging as MLflow params."""
        return flatten(self.model_dump(mode="json"), prefix)


def flatten(tree: dict[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}`` (config params; ``sep="/"`` gives metric names)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, name, sep))
        else:
            out[name] = value
    return out


def describe_validation_error(err: ValidationError, source: str) -> str:
    """One line per problem: ``file: key.path: message``, the first problem first."""
    parts = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "<root>"
        if item["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling against the documented fields)"
        else:
            msg = item["msg"]
        parts.append(f"{source}: {where}: {msg}")
    return "; ".join(parts)


def validate_config(cls: type[T], data: dict[str, Any], source: str = "<config>") -> T:
    """Validate ``data`` as ``cls``, raising a ``ConfigError`` that names key and source."""
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, source)) from None


EXTENDS = "extends"


def _read_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        loaded = yaml.safe_load(read_text(path, ConfigError))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply to read") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"{path}: top level must be a mapping of config sections, got {type(loaded).__name__}"
        )
    return loaded


def resolve_extends(node: Any, folder: Path, chain: tuple[Path, ...]) -> Any:
    """Replace every ``{extends: FILE, ...keys}`` mapping by FILE's mapping with ``keys`` merged over it.

    Why: a campaign's ``train:`` section is a training profile plus a few changes; copied whole, the
    copy drifted from its profile. ``FILE`` is relative to the file that names it; keys merge
    recursively (a nested mapping overrides key by key, anything else replaces).
    """
    if isinstance(node, list):
        return [resolve_extends(item, folder, chain) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: resolve_extends(value, folder, chain) for key, value in node.items()}
    if EXTENDS not in node:
        return node
    target = node.pop(EXTENDS)
    if not isinstance(target, str):
        raise ConfigError(f"{chain[-1]}: {EXTENDS}: must be a file name, got {target!r}")
    base_path = (folder / target).resolve()
    if base_path in chain:
        raise ConfigError(
            f"{chain[-1]}: {EXTENDS}: {target} extends itself (through {' -> '.join(map(str, chain))})"
        )
    base = resolve_extends(_read_mapping(base_path), base_path.parent, (*chain, base_path))
    return _merged(base, node)


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        out[key] = (
            _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def load_config(cls: type[T], path: str | Path | None, overrides: dict[str, Any] | None = None) -> T:
    """Load a YAML file into ``cls`` (defaults when ``path`` is None), applying dotted overrides."""
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        path = Path(path)
        source = str(path)
        data = _read_mapping(path)
        data = resolve_extends(data, path.parent, chain=(path.resolve(),))
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return validate_config(cls, data, source)
