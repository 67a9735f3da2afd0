"""A torchrun worker for tests/test_distributed.py: ``comirec train`` through the library, with
one rank killed (SIGKILL, no clean-up) right after a given step.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/_ddp_worker.py \\
        --data D --out RUN --model comirec-dr --max-steps 40 --eval-every 10 --kill-rank 1 --kill-after 25
"""

from __future__ import annotations

import argparse
import os
import signal

from comirec.config import ModelConfig, TrainConfig
from comirec.training import train

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--out", required=True)
p.add_argument("--model", required=True)
p.add_argument("--max-steps", type=int, required=True)
p.add_argument("--eval-every", type=int, required=True)
p.add_argument("--kill-rank", type=int, default=-1)
p.add_argument("--kill-after", type=int, default=-1)
p.add_argument("--embedding-sharding", default="none")  # torchrec: a sampled softmax (the full one needs the whole table)
args = p.parse_args()


def on_step(step: int) -> None:
    if int(os.environ["RANK"]) == args.kill_rank and step == args.kill_after:
        os.kill(os.getpid(), signal.SIGKILL)


train(ModelConfig(model=args.model, interests=2, dim=16),
      TrainConfig(data=args.data, out=args.out, max_steps=args.max_steps, eval_every=args.eval_every, patience=100, batch_size=32,
                  loss="sampled" if args.embedding_sharding == "torchrec" else "full", embedding_sharding=args.embedding_sharding,
                  threads=1, progress=False, seed=3),
      on_step=on_step)
