"""``comirec prepare`` and ``comirec synth``: a prepared dataset directory from raw files, or a synthetic one."""

from __future__ import annotations

import argparse
import sys

from ..config import PrepareConfig, SynthConfig, from_namespace


def prepare_command(args: argparse.Namespace) -> int:
    from ..data.pipeline import prepare

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


def synth_command(args: argparse.Namespace) -> int:
    from ..data.synth import synthesize

    ds = synthesize(from_namespace(SynthConfig, args))
    print(ds.summary())
    print(f"wrote {ds.path} in {ds.header.get('seconds', 0):.1f} s  (SYNTHETIC: not for reporting accuracy)")
    return 0
