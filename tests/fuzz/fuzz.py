"""Drive one fuzz target with atheris (coverage-guided, libFuzzer underneath).

    python tests/fuzz/fuzz.py TARGET [libFuzzer options] [NEW_CORPUS_DIR] tests/fuzz/corpus/TARGET

TARGET is aggregate, metrics, sampler or prepared (see _targets.py). comirec's Python modules
are instrumented for coverage; the Rust core is not (its branches are reached through the
structured inputs). See README.md for the commands CI and long runs use.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["comirec", "_targets"]):
    import _targets


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in _targets.TARGETS:
        sys.exit(f"usage: fuzz.py {{{','.join(_targets.TARGETS)}}} [libFuzzer options] [corpus dirs]")
    target = _targets.TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
