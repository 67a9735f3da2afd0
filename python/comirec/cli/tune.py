"""``comirec tune``: a validation-only search, the chosen run evaluated on test once (:mod:`comirec.tune`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ModelConfig, TrainConfig, TuneConfig, from_namespace
from ..tune import BEST_JSON, fmt_params, tune


def run(args: argparse.Namespace) -> int:
    """``comirec tune``: ModelConfig + TrainConfig options are the base; TuneConfig the search."""
    from ..models import check_options

    model_cfg = from_namespace(ModelConfig, args)
    check_options(model_cfg)
    train_cfg = from_namespace(TrainConfig, args, resume=False)
    tune_cfg = from_namespace(TuneConfig, args)
    result = tune(model_cfg, train_cfg, tune_cfg, log=lambda text: print(text, file=sys.stderr))
    t = result["trials"]
    print(f"{result['model']}: {t['total']} trials ({t['complete']} complete, {t['pruned']} pruned) in {result['search_seconds']:g} s; "
          f"chosen trial {result['trial']}: valid {100 * result['valid']['recall@50']:.3f}%  {fmt_params(result['params'])}")
    test = result["test"]["standard"]["0.0"]
    print("test (standard protocol, evaluated once): " + ", ".join(f"{k} {100 * v:.3f}" for k, v in test.items() if not k.endswith("_se"))
          + f"  [%]  -> {Path(train_cfg.out) / BEST_JSON}")
    return 0
