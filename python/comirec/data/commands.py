"""The ``comirec prepare`` and ``comirec synth`` commands (registered in ``comirec.cli``)."""

from __future__ import annotations

import argparse

from ..config import PrepareConfig, SynthConfig, from_namespace


def run_prepare(args: argparse.Namespace) -> int:
    from .pipeline import prepare

    ds = prepare(from_namespace(PrepareConfig, args))
    print(ds.summary())
    print(f"wrote {ds.path} in {ds.header.get('seconds', 0):.1f} s")
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from .synth import synthesize

    ds = synthesize(from_namespace(SynthConfig, args))
    print(ds.summary())
    print(f"wrote {ds.path} in {ds.header.get('seconds', 0):.1f} s  (SYNTHETIC: not for reporting accuracy)")
    return 0
