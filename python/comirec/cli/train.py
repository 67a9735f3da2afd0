"""``comirec train``: a run directory from a prepared dataset (:func:`comirec.training.train`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from ..config import ModelConfig, TrainConfig, from_namespace
from ..data.prepared import PreparedDataset
from ..runs import CONFIG, METRICS, load_run_config


def _prepared_data(path: str) -> PreparedDataset:
    """The prepared dataset at ``path``; a raw sequences directory (which reproduce prepares on
    the fly) is refused with the ``comirec prepare`` command that makes one of it."""
    from ..data import load_prepared

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"--data {p} does not exist; expected a prepared dataset (comirec prepare / comirec synth)")
    try:
        return load_prepared(p)
    except FileNotFoundError:
        txt = sorted(p.glob("*.txt")) if p.is_dir() else []
        if not txt:
            raise
        splits = sorted(p.glob("split-*.tsv"))
        target = Path("data") / p.name
        command = f"comirec prepare --format sequences --input {p} --out {target}" + (f" --split-file {splits[0]}" if splits else "")
        raise FileNotFoundError(f"--data {p}: raw sequences ({txt[0].name}), not a prepared dataset; prepare it once with "
                                f"`{command}`, then pass --data {target}") from None


def run(args: argparse.Namespace) -> int:
    """``comirec train``: options come from ModelConfig + TrainConfig. With ``--resume`` every
    setting comes from the run's config.json; see :func:`resume_config` for the options given
    again (the parser leaves options that were not given out of ``args``)."""
    from ..models import MODEL_NAMES, check_options
    from ..training import resume_config, train

    given = {k for k, v in vars(args).items() if not k.startswith("_") and v is not None}
    cfg = from_namespace(TrainConfig, args)
    if getattr(args, "resume", False):
        model_given = {f.name for f in dataclasses.fields(ModelConfig)} & given
        stored = load_run_config(Path(args.out))
        try:
            base = ModelConfig.from_stored(stored["model"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{Path(args.out) / CONFIG}: not a comirec run configuration ({exc})") from None
        asked = dataclasses.replace(base, **{k: getattr(args, k) for k in model_given})
        model_cfg, cfg = resume_config(Path(args.out), asked, cfg, given)
    else:
        if getattr(args, "model", None) is None:
            raise ValueError("--model is required: one of " + ", ".join(MODEL_NAMES))
        model_cfg = from_namespace(ModelConfig, args)
        check_options(model_cfg)
    from ..retrieval import check_factory

    ds = _prepared_data(cfg.data)  # path mistakes are reported before torch is imported (seconds)
    check_factory(cfg.index, arg="--index")
    if cfg.nproc_per_node > 1 and "WORLD_SIZE" not in os.environ:  # not under torchrun yet: start it
        from ..distributed import World, check_batch, torchrun_command

        check_batch(World(size=cfg.nproc_per_node), cfg.batch_size)
        return subprocess.run(torchrun_command(cfg.nproc_per_node, args._argv)).returncode
    run = train(model_cfg, cfg, dataset=ds)
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun, rank 0 reports
    final = json.loads((run / METRICS).read_text())
    test = final["test"]["standard"]["0.0"]
    print(f"{model_cfg.model}: best step {final['best_step']} of {final['steps']}; test (standard protocol) "
          + ", ".join(f"{k} {100 * v:.3f}" for k, v in test.items()) + f"  [%]  -> {run}")
    print("retrieval: " + ", ".join(f"{k} {v}" for k, v in final["retrieval"].items()), file=sys.stderr)
    return 0
