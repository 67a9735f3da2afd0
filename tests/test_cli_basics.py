"""The command line's own options: --version, and --help that states each default once."""

from __future__ import annotations

import re

import pytest

import comirec
from comirec.cli import COMMANDS, build_parser, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"comirec {comirec.__version__}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_prints_its_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    # a help text with a literal % once made `comirec evaluate --help` raise inside argparse
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: comirec {command}" in capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_states_each_default_once(command: str) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]  # type: ignore[attr-defined]
    for action in sub._actions:
        text = " ".join((action.help or "").split())
        assert text.lower().count("default") <= 1, (command, action.dest, text)
        assert "(default: None)" not in text and "(default: ())" not in text, (command, action.dest, text)
        assert not re.search(r"\(default: '", text), (command, action.dest, text)  # no repr quotes


def test_the_executable_ends_a_failed_command_without_finalizing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # After a CSV parse error pyarrow's thread pool could abort the interpreter's teardown
    # (SIGABRT, about 1 run in 200 under load; scripts/adversarial.py): a failed command's
    # process now ends with os._exit once its line is printed. Shown here by an atexit hook that
    # must not run.
    import subprocess
    import sys

    bad = tmp_path / "log.csv"
    bad.write_text("user_id,item_id,timestamp\n1,2,nan\n")
    code = ("import atexit, sys; atexit.register(lambda: print('finalized', file=sys.stderr))\n"
            "from comirec.cli import run; run(sys.argv[1:])")
    argv = ["prepare", "--format", "csv", "--input", str(bad), "--out", str(tmp_path / "out")]
    p = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip().startswith("comirec prepare: error: ") and "finalized" not in p.stderr, p.stderr
    p = subprocess.run([sys.executable, "-c", code, "--version"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "finalized" in p.stderr  # a success finalizes as usual
