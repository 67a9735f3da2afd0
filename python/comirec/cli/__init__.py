"""The ``comirec`` command line: the only layer that parses arguments or prints.

``COMMANDS`` is the table of commands; each one's options are built from the config dataclasses
of :mod:`comirec.config`, and its handler (``comirec.cli.<command>.run``: config in, library call,
lines out) is imported only when it runs, so ``comirec --help`` never imports torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Sequence


@dataclasses.dataclass(frozen=True)
class Command:
    """One command: its options are the fields of ``configs`` (classes of :mod:`comirec.config`),
    and ``comirec.cli.<module>.<function>(args)`` runs it."""

    help: str
    configs: tuple[str, ...]
    module: str
    function: str = "run"
    #: fields left out of the options
    skip: tuple[str, ...] = ()
    #: required fields this command does not require (its handler checks when they are needed)
    optional: tuple[str, ...] = ()
    #: options not given stay out of the namespace, so the handler can tell them from defaults
    #: (``train --resume`` takes a given option as a change: :func:`comirec.training.resume_config`)
    keep_unset: bool = False
    #: help texts that differ from the field's documentation
    helps: tuple[tuple[str, str], ...] = ()


COMMANDS: dict[str, Command] = {
    "train": Command("train a model on a prepared dataset into a run directory", ("ModelConfig", "TrainConfig"), "train",
                     optional=("model",), keep_unset=True),  # --model: not with --resume (the run knows its model)
    "evaluate": Command("evaluate a trained run (Recall/NDCG/HitRate/Diversity @N, several λ)", ("EvalConfig",), "evaluate"),
    "reproduce": Command("train all six models on one split and print the paper's Table 3 and Table 5 layouts", ("ReproduceConfig",),
                         "reproduce"),
    "tune": Command("search hyper-parameters on the validation users (Optuna); evaluate the chosen run on test once",
                    ("ModelConfig", "TrainConfig", "TuneConfig"), "tune",
                    skip=("resume", "tensorboard", "nproc_per_node"),  # trials log to their own log.jsonl; one process
                    helps=(("out", "study directory to create: study.db, best.json, trials/NNN (one run per trial)"),
                           ("max_minutes", "wall-clock cap of one trial in minutes (default 0: the search's remaining time)"))),
    "recommend": Command("top-n lists for many users (Parquet in, Parquet shards out), in this process or as a Ray Data "
                         "pipeline", ("RecommendConfig",), "recommend"),
    "demo": Command("aggregate + metrics on generated candidates: the λ accuracy/diversity trade-off", ("DemoConfig",), "demo"),
    "prepare": Command("Prepare a dataset: read raw files, filter, remap ids, split users, write a memory-mapped directory.",
                       ("PrepareConfig",), "data", "prepare_command"),
    "synth": Command("Write a SYNTHETIC prepared dataset with planted category interests (tests, scale benchmarks).", ("SynthConfig",),
                     "data", "synth_command"),
}


def build_parser() -> argparse.ArgumentParser:
    from comirec import __version__

    parser = argparse.ArgumentParser(prog="comirec", description="Controllable multi-interest recommendation (ComiRec).")
    parser.add_argument("--version", action="version", version=f"comirec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from comirec import config

    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        for cls in cmd.configs:
            config.add_arguments(p, getattr(config, cls), skip=cmd.skip, optional=cmd.optional, keep_unset=cmd.keep_unset,
                                 helps=dict(cmd.helps))
        p.set_defaults(_target=f"comirec.cli.{cmd.module}:{cmd.function}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args._argv = list(argv) if argv is not None else sys.argv[1:]  # what `train --nproc-per-node` passes to torchrun
    if not getattr(args, "_target", None):
        parser.print_help()
        return 2
    module_name, func_name = args._target.split(":")
    import importlib

    func = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ImportError as exc:  # an optional dependency is missing: its message names the extra
        _print_error(f"comirec {args.command}: error: {error_line(exc)}")
        return 1
    except Exception as exc:
        code = exit_code(exc)
        if code is None:
            raise
        # One clear line, no traceback: 2 for bad input, 1 for an I/O failure.
        _print_error(f"comirec {args.command}: error: {error_line(exc)}")
        return code


def exit_code(exc: BaseException) -> int | None:
    """2 for bad input, 1 for an I/O failure (disk full, another writer, ...), None for a bug."""
    from comirec.data._writing import OutputBusyError, WriteError

    if isinstance(exc, (OutputBusyError, WriteError)):
        return 1
    if isinstance(exc, (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError)):
        return 2
    if isinstance(exc, OSError):
        return 1
    return None


def error_line(exc: BaseException) -> str:
    """The exception's message on one line (an OSError without a file: its errno text)."""
    from comirec.data._writing import write_error

    if isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, FileExistsError)) and exc.filename:
        exc = write_error(exc, exc.filename)
    text = str(exc) or type(exc).__name__
    return " ".join(text.splitlines())


def _print_error(text: str) -> None:
    # Messages may hold undecodable bytes from a file or a file name (surrogate escapes): show
    # them as escapes instead of failing to print, or echoing raw bytes to the terminal.
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    from comirec.data._text import escape_unprintable

    safe = escape_unprintable(text)
    print(safe.encode(encoding, "backslashreplace").decode(encoding), file=sys.stderr)


def run(argv: Sequence[str] | None = None) -> None:
    """The ``comirec`` executable: :func:`main`, then exit. After a failure (its one line printed,
    its outputs already cleaned up) the process ends with ``os._exit``: a native thread pool torn
    down while the interpreter finalizes right after an error can abort it (pyarrow's after a CSV
    parse error: SIGABRT, "terminate called without an active exception", about 1 run in 200;
    apache/arrow#34314), which would turn a clear error into a crash."""
    code = main(argv)
    if code:
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
