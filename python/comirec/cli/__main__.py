"""``python -m comirec.cli``: the ``comirec`` executable."""

from comirec.cli import run

run()
