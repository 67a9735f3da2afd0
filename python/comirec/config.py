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


# ---- data layer (issue 3): `comirec prepare` and `comirec synth` -------------------------------

PREPARE_FORMATS = ("amazon-books", "taobao", "movielens", "sequences", "csv", "parquet")


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """Options of ``comirec prepare``: read a raw dataset, apply the protocol, write a prepared one."""

    format: str = dataclasses.field(
        metadata={"help": "input format", "choices": PREPARE_FORMATS},
    )
    input: str = dataclasses.field(
        metadata={
            "help": "input file or directory (taobao: UserBehavior.csv; amazon-books: reviews JSON lines; "
            "movielens: a ratings file or its directory; sequences: <name>.txt or its directory; csv/parquet: a table)"
        }
    )
    out: str = dataclasses.field(metadata={"help": "output directory (written atomically)"})
    name: str | None = dataclasses.field(default=None, metadata={"help": "dataset name (default: from the input)"})
    categories: str | None = dataclasses.field(
        default=None,
        metadata={
            "help": "item -> category file: Amazon metadata (amazon-books), a genres file (movielens; found "
            "beside the ratings by default), or a TSV item<TAB>category[<TAB>...] (sequences, csv, parquet)"
        },
    )
    user_col: str = dataclasses.field(default="user_id", metadata={"help": "csv/parquet: user column"})
    item_col: str = dataclasses.field(default="item_id", metadata={"help": "csv/parquet: item column"})
    time_col: str = dataclasses.field(
        default="timestamp", metadata={"help": "csv/parquet: time column ('' = the file order is the time order)"}
    )
    category_col: str | None = dataclasses.field(
        default=None, metadata={"help": "csv/parquet: per-row category column (else --categories, else none)"}
    )
    delimiter: str = dataclasses.field(default=",", metadata={"help": "csv: field delimiter ('\\t' or 'tab' for tabs)"})
    header: bool = dataclasses.field(
        default=True, metadata={"help": "csv: the first line names the columns (else columns are named 0, 1, ...)"}
    )
    behaviors: str = dataclasses.field(
        default="pv", metadata={"help": "taobao: comma-separated behavior types to keep ('all' keeps every row)"}
    )
    min_item_count: int = dataclasses.field(default=5, metadata={"help": "keep items with at least this many interactions"})
    min_user_count: int = dataclasses.field(
        default=5, metadata={"help": "then keep users with at least this many remaining interactions"}
    )
    kcore: bool = dataclasses.field(
        default=False, metadata={"help": "repeat the two filters until both hold (a true k-core; the authors filter once)"}
    )
    seed: int = dataclasses.field(default=1230, metadata={"help": "seed of the user split"})
    split_ratio: tuple[float, ...] = dataclasses.field(
        default=(0.8, 0.1, 0.1), metadata={"help": "train,valid,test fractions of the users"}
    )
    split_file: str | None = dataclasses.field(
        default=None, metadata={"help": "use this user split (user_id<TAB>split per line, raw ids) instead of drawing one"}
    )
    overwrite: bool = dataclasses.field(default=False, metadata={"help": "replace --out if it exists"})
    block_mb: int = dataclasses.field(default=32, metadata={"help": "read the input in blocks of this many MiB"})


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """Options of ``comirec synth``: a SYNTHETIC prepared dataset with planted category interests."""

    users: int = dataclasses.field(metadata={"help": "number of users"})
    items: int = dataclasses.field(metadata={"help": "number of items (the catalogue; rarely drawn items stay in it)"})
    categories: int = dataclasses.field(metadata={"help": "number of categories (<= items)"})
    out: str = dataclasses.field(metadata={"help": "output directory (written atomically)"})
    interests_per_user: tuple[int, ...] = dataclasses.field(
        default=(2, 4), metadata={"help": "MIN,MAX latent category interests per user (uniform in the range)"}
    )
    mean_length: float = dataclasses.field(default=20.0, metadata={"help": "mean sequence length"})
    min_length: int = dataclasses.field(default=5, metadata={"help": "minimum sequence length"})
    max_length: int = dataclasses.field(default=500, metadata={"help": "maximum sequence length"})
    stickiness: float = dataclasses.field(
        default=0.7, metadata={"help": "probability that an event stays with the previous event's interest"}
    )
    item_skew: float = dataclasses.field(
        default=1.0, metadata={"help": "power-law exponent of item popularity within a category (0 = uniform)"}
    )
    category_skew: float = dataclasses.field(
        default=1.0, metadata={"help": "power-law exponent of category size and popularity (0 = uniform)"}
    )
    seed: int = dataclasses.field(default=0, metadata={"help": "random seed (the data and the user split)"})
    split_ratio: tuple[float, ...] = dataclasses.field(
        default=(0.8, 0.1, 0.1), metadata={"help": "train,valid,test fractions of the users"}
    )
    name: str = dataclasses.field(default="synthetic", metadata={"help": "dataset name"})
    overwrite: bool = dataclasses.field(default=False, metadata={"help": "replace --out if it exists"})
