"""Building checked configs: one loader, :func:`load_section`, for the whole config (YAML files and mappings),
a resolved run (``lotlip train --run``) and the ``launch`` section (``--launch``).

Sources are merged onto the section's dataclass with omegaconf, which rejects unknown keys and wrong types;
every failure is one line naming the origin (file or option), the key and what was expected.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lotlip.config.checks import check_run, check_section
from lotlip.config.runs import resolve_run
from lotlip.config.schema import ConfigError, LotlipConfig, RunConfig

T = TypeVar("T")
ConfigSource = Mapping | DictConfig | Path


def describe_error(exc: OmegaConfBaseException) -> str:
    """An OmegaConf error as ``<key>: <first line of its message>``."""
    key = getattr(exc, "full_key", None) or "?"
    msg = str(getattr(exc, "msg", exc)).splitlines()[0]
    if "not in" in msg and "Key" in msg:
        return f"unknown key '{key}'"
    if "missing mandatory value" in msg.lower():
        return f"missing value for '{key}'"
    return f"key '{key}': {msg}"


def read_config_file(path: str | Path) -> DictConfig | ListConfig:
    """One config file as omegaconf nodes, unvalidated.

    Raises:
        ConfigError: one line naming the file: not found (or not a file), unreadable, not UTF-8, not YAML.
    """
    try:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: config file not found")
        return OmegaConf.load(path)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{path}: {describe_error(exc)}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at} ({getattr(exc, 'problem', None) or exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None


def parse_json(text: str, origin: str) -> Any:
    """JSON text given on the command line (``origin``: the option) as Python data."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{origin}: not valid JSON ({exc.msg})") from None


def _check_sections(cls: type, data: Any, where: str) -> None:
    """A section of ``cls`` (``train``, ``benchmarks``, ...) given a scalar or a list: one error naming it."""
    if not isinstance(data, DictConfig):
        return  # a top-level list: OmegaConf's merge error names the origin
    sections = {f.name for f in dataclasses.fields(cls) if f.default_factory is not dataclasses.MISSING}
    raw = OmegaConf.to_container(data, resolve=False)
    for key in sorted(sections & raw.keys()):
        if raw[key] is not None and not isinstance(raw[key], dict):
            raise ConfigError(f"{where}: key '{key}': expected a mapping, got {type(raw[key]).__name__}")


def _node(src: ConfigSource | None, where: str) -> DictConfig | ListConfig:
    """One source as omegaconf nodes: a file read, a mapping converted, a node as it is."""
    if isinstance(src, Path):
        return read_config_file(src)
    if isinstance(src, DictConfig | ListConfig):
        return src
    if src is not None and not isinstance(src, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(src).__name__}")
    return OmegaConf.create(_plain(src or {}))


def _plain(value: Any) -> Any:
    """Nested mappings and sequences as plain dicts and lists: omegaconf refuses other mapping types, such as the
    ``OrderedDict`` Snakemake reads a JSON config file into."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _replace_table_rows(merged: DictConfig, data: DictConfig | ListConfig) -> None:
    """A source that gives a paper table's ``rows`` replaces the inherited rows instead of merging into them:
    rows are ordered, and a merge would keep the inherited rows first (a study's Table 3 would list K = 2 before
    K = 1)."""
    if not isinstance(data, DictConfig) or "paper" not in merged or not isinstance(data.get("paper"), DictConfig):
        return
    tables = data.paper.get("tables")
    if not isinstance(tables, DictConfig):
        return
    for name, table in tables.items():
        if isinstance(table, DictConfig) and "rows" in table and name in merged.paper.tables:
            merged.paper.tables[name].rows = {}


def load_section(cls: type[T], *sources: ConfigSource | None, origin: str) -> T:
    """Merge ``sources`` (later wins: a YAML file's path, a mapping or an omegaconf node; ``None`` is empty) onto
    the defaults of dataclass ``cls``, convert, and run the section's checks
    (:func:`lotlip.config.checks.check_section`).

    Raises:
        ConfigError: one line naming the file (a path source) or ``origin``, the key and what was expected.
    """
    merged = OmegaConf.structured(cls)
    for src in sources:
        where = str(src) if isinstance(src, Path) else origin
        try:
            data = _node(src, where)
            _check_sections(cls, data, where)
            _replace_table_rows(merged, data)
            merged = OmegaConf.merge(merged, data)
        except OmegaConfBaseException as exc:
            raise ConfigError(f"{where}: {describe_error(exc)}") from None
    try:
        obj: T = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{origin}: {describe_error(exc)}") from None
    check_section(obj)
    return obj


def load_config(*sources: dict | DictConfig | str | Path, origin: str = "config") -> LotlipConfig:
    """Merge YAML files (a ``str`` is a path) or mappings (later wins) onto the defaults, validate, return the
    typed config.

    Raises:
        ConfigError: one line naming the offending key (or file) and what was expected.
    """
    return load_section(LotlipConfig, *(Path(s) if isinstance(s, str) else s for s in sources), origin=origin)


def run_config(cfg: LotlipConfig, name: str, seed: int | None = None) -> RunConfig:
    """Experiment ``name`` trained with ``seed`` (default: its first seed), resolved
    (:func:`lotlip.config.runs.resolve_run`) and checked (:func:`lotlip.config.checks.check_run`: ``longclip``
    needs long texts and takes no registers, ...). Contradictions raise a ``ConfigError`` naming the field."""
    rc = resolve_run(cfg, name, seed)
    check_run(rc)
    return rc


def run_config_from_dict(data: dict) -> RunConfig:
    """Rebuild a RunConfig from its JSON form (as passed by the workflow), validating it."""
    return load_section(RunConfig, data, origin="run config")


def to_dict(cfg: Any) -> dict:
    """A plain JSON-serialisable dict of any config node."""
    return json.loads(json.dumps(dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg))
