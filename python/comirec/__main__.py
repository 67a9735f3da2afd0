"""``python -m comirec``: the ``comirec`` executable (what ``torchrun -m comirec train`` runs)."""

from comirec.cli import run

run()
