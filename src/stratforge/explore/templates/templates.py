"""Parameterized Solidity strategy templates.

A template is a ``<name>.sol.template`` file with ``{{PARAM}}`` placeholders next to a
``<name>.json`` schema::

    {"name": "...", "title": "...", "hypothesis": "H3_fair_price", "description": "...",
     "params": [{"name": "BASE_FEE", "type": "bps", "default": 40, "min": 15, "max": 80}, ...],
     "constraints": [["FEE_FLOOR", "<=", "BASE_FEE"]]}

Parameter types and how a value is written into the source:

* ``bps``: a fee in basis points (fractions allowed), written as a WAD integer (``40`` -> ``4000...``).
* ``wad``: a real number (factor, decay, threshold), written as a WAD integer (``0.5`` -> ``5e17`` digits).
* ``int``: an integer written as is; ``"format": "sci"`` writes it in ``25e14`` form (used by the
  template extractor so that a template with its defaults renders back to the original source).

``{{STRATEGY_NAME}}`` is not a parameter: it is filled with the name of the rendered strategy.
The shipped library lives next to this module; :func:`load_library` merges user directories on top.
Every template is scored as its rendered, compiled Solidity.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHIPPED_DIR = Path(__file__).resolve().parent
TEMPLATE_SUFFIX = ".sol.template"
NAME_PLACEHOLDER = "STRATEGY_NAME"
PARAM_TYPES = ("int", "bps", "wad")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Z][A-Z0-9_]*)\s*\}\}")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9 _.:/+-]")


class TemplateError(ValueError):
    """A template or its schema is malformed, or parameters do not fit it."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str
    default: float
    min: float
    max: float
    description: str = ""
    format: str = "plain"

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise TemplateError(f"parameter {self.name}: type must be one of {PARAM_TYPES}, got {self.type}")
        if not (self.min <= self.default <= self.max):
            raise TemplateError(
                f"parameter {self.name}: default {self.default} outside [{self.min}, {self.max}]"
            )
        if self.format not in ("plain", "sci"):
            raise TemplateError(f"parameter {self.name}: unknown format {self.format}")

    def clip(self, value: float) -> float:
        """Clamp into range and round to the parameter's resolution (tidy sources, fewer duplicates)."""
        v = min(max(float(value), self.min), self.max)
        if self.type == "int":
            return float(round(v))
        if self.type == "bps":
            return round(v, 2)
        if v == 0:
            return 0.0
        digits = 4 - int(math.floor(math.log10(abs(v))))  # 4 significant digits for WAD reals
        return round(v, max(0, digits))

    def to_int(self, value: float) -> int:
        """The integer the Solidity source holds for ``value``."""
        if self.type == "bps":
            return round(value * 10**14)
        if self.type == "wad":
            return round(value * 10**18)
        return round(value)

    def render(self, value: float) -> str:
        n = self.to_int(value)
        if n < 0:
            raise TemplateError(f"parameter {self.name}: negative value {value} cannot be a uint256")
        if self.format == "sci" and n > 0:
            exp = 0
            while n % 10 == 0:
                n //= 10
                exp += 1
            return f"{n}e{exp}" if exp else str(n)
        return str(n)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "min": self.min,
            "max": self.max,
        }
        if self.description:
            d["description"] = self.description
        if self.format != "plain":
            d["format"] = self.format
        return d


@dataclass(frozen=True)
class Template:
    name: str
    text: str
    params: tuple[ParamSpec, ...]
    hypothesis: str = ""
    title: str = ""
    description: str = ""
    constraints: tuple[tuple[str, str, str], ...] = ()
    path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        found = set(_PLACEHOLDER.findall(self.text)) - {NAME_PLACEHOLDER}
        declared = {p.name for p in self.params}
        if found != declared:
            raise TemplateError(
                f"template {self.name}: placeholders {sorted(found)} do not match parameters {sorted(declared)}"
            )
        for a, op, b in self.constraints:
            if op != "<=" or a not in declared or b not in declared:
                raise TemplateError(f"template {self.name}: bad constraint {a} {op} {b}")

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def spec(self, name: str) -> ParamSpec:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def defaults(self) -> dict[str, float]:
        return {p.name: p.default for p in self.params}

    def normalize(self, params: Mapping[str, float] | None = None) -> dict[str, float]:
        """Defaults filled in, values clipped to range, ``a <= b`` constraints repaired (a lowered)."""
        params = dict(params or {})
        unknown = set(params) - set(self.param_names)
        if unknown:
            raise TemplateError(f"template {self.name} has no parameters {sorted(unknown)}")
        out = {p.name: p.clip(params.get(p.name, p.default)) for p in self.params}
        for a, _op, b in self.constraints:
            if out[a] > out[b]:
                out[a] = self.spec(a).clip(out[b])
        return out

    def render(self, params: Mapping[str, float] | None = None, strategy_name: str | None = None) -> str:
        """Solidity source for ``params`` (normalized first); unknown names raise :class:`TemplateError`."""
        values = self.normalize(params)
        label = _SAFE_NAME.sub("", strategy_name or self.name)[:60]

        def sub(m: re.Match[str]) -> str:
            key = m.group(1)
            if key == NAME_PLACEHOLDER:
                return label
            return self.spec(key).render(values[key])

        return _PLACEHOLDER.sub(sub, self.text)

    def to_schema(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "title": self.title,
            "hypothesis": self.hypothesis,
            "description": self.description,
            "params": [p.to_json() for p in self.params],
        }
        if self.constraints:
            d["constraints"] = [list(c) for c in self.constraints]
        if self.meta:
            d["meta"] = self.meta
        return d


def template_from_schema(text: str, schema: Mapping[str, Any], path: Path | None = None) -> Template:
    try:
        params = tuple(
            ParamSpec(
                name=p["name"],
                type=p["type"],
                default=float(p["default"]),
                min=float(p["min"]),
                max=float(p["max"]),
                description=p.get("description", ""),
                format=p.get("format", "plain"),
            )
            for p in schema["params"]
        )
        return Template(
            name=schema["name"],
            text=text,
            params=params,
            hypothesis=schema.get("hypothesis", ""),
            title=schema.get("title", ""),
            description=schema.get("description", ""),
            constraints=tuple(tuple(c) for c in schema.get("constraints", ())),  # type: ignore[misc]
            path=path,
            meta=dict(schema.get("meta", {})),
        )
    except (KeyError, TypeError) as exc:
        raise TemplateError(f"bad template schema {path or schema.get('name')}: {exc}") from exc


def load_template(path: Path | str) -> Template:
    """Load ``<name>.sol.template`` and its ``<name>.json`` schema."""
    path = Path(path)
    if not path.name.endswith(TEMPLATE_SUFFIX):
        raise TemplateError(f"{path} is not a {TEMPLATE_SUFFIX} file")
    schema_path = path.with_name(path.name[: -len(TEMPLATE_SUFFIX)] + ".json")
    if not schema_path.exists():
        raise TemplateError(f"{path}: schema {schema_path.name} is missing")
    return template_from_schema(path.read_text(), json.loads(schema_path.read_text()), path)


def load_library(extra_dirs: Iterable[Path | str] = (), *, shipped: bool = True) -> dict[str, Template]:
    """All templates by name: the shipped ones, then each extra directory (later wins on a name clash)."""
    dirs = ([SHIPPED_DIR] if shipped else []) + [Path(d) for d in extra_dirs]
    out: dict[str, Template] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        for path in sorted(d.glob(f"*{TEMPLATE_SUFFIX}")):
            t = load_template(path)
            out[t.name] = t
    return out


def save_template(template: Template, directory: Path | str) -> Path:
    """Write ``<name>.sol.template`` + ``<name>.json`` atomically; returns the template path."""
    from stratforge.explore.store import atomic_write_text

    directory = Path(directory)
    path = directory / f"{template.name}{TEMPLATE_SUFFIX}"
    atomic_write_text(directory / f"{template.name}.json", json.dumps(template.to_schema(), indent=2) + "\n")
    atomic_write_text(path, template.text)
    return path
