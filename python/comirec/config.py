"""Configuration as frozen dataclasses; the CLI is derived from them.

Each field's ``metadata["help"]`` is its documentation; the default is the documented default.
``add_arguments`` turns a dataclass into argparse options (``--field-name``) and ``from_namespace``
builds the dataclass back from the parsed namespace, so a config has a single definition.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def _parse_float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of numbers, got {text!r}")


def _parse_int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of integers, got {text!r}")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one ``--option`` per field of the dataclass ``cls`` (fields in ``skip`` excluded)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        tp, _optional = _unwrap_optional(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        kwargs: dict[str, Any] = {"dest": f.name, "help": help_text}
        if f.default is not dataclasses.MISSING:
            kwargs["default"] = f.default
            kwargs["help"] = f"{help_text} (default: {f.default!r})"
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            kwargs["default"] = f.default_factory()  # type: ignore[misc]
        else:
            kwargs["required"] = True
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) is tuple:
            (elem, *_rest) = typing.get_args(tp)
            kwargs["type"] = _parse_float_list if elem is float else _parse_int_list
            kwargs["metavar"] = "A,B,..."
        elif tp in (int, float, str):
            kwargs["type"] = tp
        else:
            kwargs["type"] = str
        parser.add_argument(flag, **kwargs)


def from_namespace(cls: type[T], ns: argparse.Namespace, **overrides: Any) -> T:
    """Build ``cls`` from the parsed options (and explicit overrides)."""
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if f.init and hasattr(ns, f.name)}
    values.update(overrides)
    return cls(**values)  # type: ignore[call-arg]


# -- comirec demo (python/comirec/demo.py) --


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Synthetic candidates through aggregate + metrics: the accuracy/diversity trade-off of λ."""

    users: int = dataclasses.field(default=10_000, metadata={"help": "number of synthetic users"})
    interests: int = dataclasses.field(default=4, metadata={"help": "interests per user (K)"})
    per_interest: int = dataclasses.field(default=50, metadata={"help": "candidates retrieved per interest (N)"})
    items: int = dataclasses.field(default=100_000, metadata={"help": "catalogue size"})
    categories: int = dataclasses.field(default=200, metadata={"help": "number of item categories"})
    n: int = dataclasses.field(default=50, metadata={"help": "items recommended per user"})
    lams: tuple[float, ...] = dataclasses.field(
        default=(0.0, 0.05, 0.1, 0.25, 1.0, float("inf")),
        metadata={"help": "diversity factors λ to compare (comma-separated; inf allowed)"},
    )
    seed: int = dataclasses.field(default=0, metadata={"help": "random seed"})
