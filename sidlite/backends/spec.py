"""Backend specs: a backend name with typed options, parsed from text such as ``"topk:k=5,nprobe=4"``.

The options a backend accepts are the keyword parameters of its constructor, with their annotated
types; a spec is checked against them before any work, so a misspelt or foreign option is a one-line
error that lists the valid ones, never a TypeError deep inside a level. With ``auto``, each option goes
only to the candidate backends that accept it (``auto:nprobe=4`` tunes top-k and leaves exact attention
alone); an option no candidate accepts is an error.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import SidliteError, check

#: What 'auto' chooses between (see :func:`sidlite.backends.choose_backend`).
AUTO_CANDIDATES = ("attention", "topk")


def accepted_options(cls) -> dict[str, inspect.Parameter]:
    """The keyword options of a backend class: its constructor's parameters after the dataset,
    including those it passes on to its base class through ``**options``."""
    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = list(inspect.signature(klass.__init__).parameters.values())[2:]  # self, dataset
        for p in params:
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                found.setdefault(p.name, p)
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return found


def _convert(text: str, parameter: inspect.Parameter, where: str) -> Any:
    """A value from its text, by the parameter's annotation (int, float, str, bool, or None)."""
    annotation = str(parameter.annotation)
    if text.lower() == "none" and ("None" in annotation or parameter.default is None):
        return None
    for kind, convert in (("bool", lambda t: {"true": True, "false": False}[t.lower()]), ("int", int),
                          ("float", float)):
        noun = {"bool": "true or false", "int": "whole number", "float": "number"}[kind]
        if kind in annotation.replace("torch.dtype", ""):
            try:
                return convert(text)
            except (ValueError, KeyError):
                if kind != "int" or "float" not in annotation:
                    raise SidliteError(f"{where}: {parameter.name}={text!r} is not a {noun}") from None
    return text


@dataclass(frozen=True)
class BackendSpec:
    """A backend name ('auto' or a registered backend) and its options, validated."""

    name: str = "auto"
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: "str | BackendSpec", registry: Mapping[str, type], **extra) -> "BackendSpec":
        """From ``'name'``, ``'name:key=value,key=value'`` or a spec, plus keyword options (which win)."""
        if isinstance(spec, BackendSpec):
            name, options = spec.name, dict(spec.options)
        else:
            check(isinstance(spec, str) and spec.strip(), f"a backend is a name such as 'auto' or 'topk:nprobe=4', got {spec!r}")
            name, _, rest = spec.strip().partition(":")
            options = {}
            for item in filter(None, (part.strip() for part in rest.split(","))):
                key, eq, value = item.partition("=")
                check(bool(eq) and key.strip(), f"backend option {item!r} in {spec!r} is not key=value")
                check(key.strip() not in options, f"backend option {key.strip()!r} is given twice in {spec!r}")
                options[key.strip()] = value.strip()
        check(name == "auto" or name in registry,
              f"unknown backend {name!r}; choose auto or one of: {', '.join(registry)}")
        options.update(extra)
        candidates = AUTO_CANDIDATES if name == "auto" else (name,)
        known = {c: accepted_options(registry[c]) for c in candidates}
        typed = {}
        for key, value in options.items():
            owners = [c for c in candidates if key in known[c]]
            if not owners:
                valid = sorted(set().union(*known.values()))
                raise SidliteError(f"backend {name!r} has no option {key!r}; valid options: {', '.join(valid)}")
            typed[key] = _convert(value, known[owners[0]][key], f"backend {name!r}") if isinstance(value, str) else value
        return cls(name, typed)

    def options_for(self, backend: str, registry: Mapping[str, type]) -> dict[str, Any]:
        """The options that go to ``backend`` (with auto: those it accepts)."""
        accepted = accepted_options(registry[backend])
        return {k: v for k, v in self.options.items() if k in accepted}

    def __str__(self) -> str:
        return self.name + (":" + ",".join(f"{k}={v}" for k, v in self.options.items()) if self.options else "")
