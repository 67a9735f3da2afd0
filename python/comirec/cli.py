"""The ``comirec`` command line.

Parsers are built from the config dataclasses in :mod:`comirec.config`; each command's
implementation is imported only when it runs, so ``comirec --help`` never imports torch.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

# name -> (help, function adding the command's options, "module:function" that runs it)
Registrar = Callable[[argparse.ArgumentParser], None]
COMMANDS: dict[str, tuple[str, Registrar, str]] = {}


def command(name: str, help: str, target: str) -> Callable[[Registrar], Registrar]:
    def deco(fn: Registrar) -> Registrar:
        COMMANDS[name] = (help, fn, target)
        return fn

    return deco


# -- commands are registered below (each one's options, then the module that runs it) --


# -- train / evaluate / reproduce (issue 4) --
@command("train", "train a model on a prepared dataset into a run directory", "comirec.training:cli_train")
def _train_options(p: argparse.ArgumentParser) -> None:
    from comirec.config import ModelConfig, TrainConfig, add_arguments

    add_arguments(p, ModelConfig)
    add_arguments(p, TrainConfig)
    for action in p._actions:
        if action.dest == "model":  # --model is not needed with --resume (the run knows its model)
            action.required = False
            action.default = None
        elif action.option_strings and not action.required and action.dest != "help":
            # Options not given stay out of the namespace (the dataclass defaults apply), so
            # --resume can tell an option given again from a default (comirec.training.resume_config).
            action.default = argparse.SUPPRESS


@command("evaluate", "evaluate a trained run (Recall/NDCG/HitRate/Diversity @N, several λ)", "comirec.evaluation:cli_evaluate")
def _evaluate_options(p: argparse.ArgumentParser) -> None:
    from comirec.config import EvalConfig, add_arguments

    add_arguments(p, EvalConfig)


@command("reproduce", "train all six models on one split and print the paper's Table 3 and Table 5 layouts", "comirec.reproduce:cli_reproduce")
def _reproduce_options(p: argparse.ArgumentParser) -> None:
    from comirec.config import ReproduceConfig, add_arguments

    add_arguments(p, ReproduceConfig)


@command("tune", "search hyper-parameters on the validation users (Optuna); evaluate the chosen run on test once", "comirec.tune:cli_tune")
def _tune_options(p: argparse.ArgumentParser) -> None:
    from comirec.config import ModelConfig, TrainConfig, TuneConfig, add_arguments

    add_arguments(p, ModelConfig)
    add_arguments(p, TrainConfig, skip=("resume", "tensorboard"))  # trials log to their own log.jsonl
    add_arguments(p, TuneConfig)
    for action in p._actions:
        if action.dest == "out":
            action.help = "study directory to create: study.db, best.json, trials/NNN (one run per trial)"
        elif action.dest == "max_minutes":
            action.help = "wall-clock cap of one trial in minutes (default 0: the search's remaining time)"


@command("demo", "aggregate + metrics on generated candidates: the λ accuracy/diversity trade-off", "comirec.demo:main")
def _demo_options(p: argparse.ArgumentParser) -> None:
    from comirec.config import DemoConfig, add_arguments

    add_arguments(p, DemoConfig)


# data layer (issue 3)
@command("prepare", "Prepare a dataset: read raw files, filter, remap ids, split users, write a memory-mapped directory.", "comirec.data.commands:run_prepare")
def _prepare_options(p: argparse.ArgumentParser) -> None:
    from comirec.config import PrepareConfig, add_arguments

    add_arguments(p, PrepareConfig)


@command("synth", "Write a SYNTHETIC prepared dataset with planted category interests (tests, scale benchmarks).", "comirec.data.commands:run_synth")
def _synth_options(p: argparse.ArgumentParser) -> None:
    from comirec.config import SynthConfig, add_arguments

    add_arguments(p, SynthConfig)


def build_parser() -> argparse.ArgumentParser:
    from comirec import __version__

    parser = argparse.ArgumentParser(prog="comirec", description="Controllable multi-interest recommendation (ComiRec).")
    parser.add_argument("--version", action="version", version=f"comirec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add, target) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add(p)
        p.set_defaults(_target=target)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    run()
