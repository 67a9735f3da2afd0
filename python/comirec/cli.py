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
    for action in p._actions:  # --model is not needed with --resume (the run knows its model)
        if action.dest == "model":
            action.required = False
            action.default = None


@command("evaluate", "evaluate a trained run (Recall/NDCG/HitRate/Diversity @N, several λ)", "comirec.evaluation:cli_evaluate")
def _evaluate_options(p: argparse.ArgumentParser) -> None:
    from comirec.config import EvalConfig, add_arguments

    add_arguments(p, EvalConfig)


@command("reproduce", "train all six models on one split and print the paper's Table 3 and Table 5 layouts", "comirec.reproduce:cli_reproduce")
def _reproduce_options(p: argparse.ArgumentParser) -> None:
    from comirec.config import ReproduceConfig, add_arguments

    add_arguments(p, ReproduceConfig)


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
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as exc:
        # Bad input: one clear line, no traceback.
        print(f"comirec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an optional dependency is missing: its message names the extra
        print(f"comirec {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
