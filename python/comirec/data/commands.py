"""The ``comirec prepare`` and ``comirec synth`` commands (registered in ``comirec.cli``)."""

from __future__ import annotations

import argparse
import sys

from ..config import PrepareConfig, SynthConfig, from_namespace


def run_prepare(args: argparse.Namespace) -> int:
    from .pipeline import prepare

    cfg = from_namespace(PrepareConfig, args)
    if not cfg.progress:
        ds = prepare(cfg)
    else:
        from tqdm import tqdm  # installed with pyarrow (the train extra), which prepare needs

        # disable=None: on a terminal only, so that a log file or an error's one line stays clean
        with tqdm(desc="reading", unit=" rows", unit_scale=True, file=sys.stderr, dynamic_ncols=True, disable=None) as bar:
            ds = prepare(cfg, on_rows=lambda n: bar.update(n - bar.n))
    print(ds.summary())
    print(f"wrote {ds.path} in {ds.header.get('seconds', 0):.1f} s")
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from .synth import synthesize

    ds = synthesize(from_namespace(SynthConfig, args))
    print(ds.summary())
    print(f"wrote {ds.path} in {ds.header.get('seconds', 0):.1f} s  (SYNTHETIC: not for reporting accuracy)")
    return 0
