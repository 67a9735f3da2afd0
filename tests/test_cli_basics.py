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
def test_help_states_each_default_once(command: str) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]  # type: ignore[attr-defined]
    for action in sub._actions:
        text = " ".join((action.help or "").split())
        assert text.lower().count("default") <= 1, (command, action.dest, text)
        assert "(default: None)" not in text and "(default: ())" not in text, (command, action.dest, text)
        assert not re.search(r"\(default: '", text), (command, action.dest, text)  # no repr quotes
