"""The README's examples stay true: its Python block runs, and every option its command lines use is one the
command takes (a renamed option once left the README describing an API that raised)."""
import argparse
import re
import shlex
from pathlib import Path

import pytest
import torch

from tritnet.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _code_blocks(language: str) -> list:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def _subparsers(parser) -> dict:
    found = {}
    for action in parser._actions:          # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _command_lines() -> list:
    lines = []
    for block in _code_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("tritnet "):
                lines.append(line)
    return lines


def test_the_readme_shows_commands_and_python():
    assert len(_command_lines()) >= 30 and len(_code_blocks("python")) >= 1


@pytest.mark.parametrize("line", _command_lines())
def test_every_readme_command_uses_options_its_command_takes(line):
    words = shlex.split(line)[1:]
    parser, path = build_parser(), ["tritnet"]
    while words and words[0] in _subparsers(parser):
        path.append(words[0])
        parser = _subparsers(parser)[words.pop(0)]
    assert len(path) > 1, f"{line}: no such command"
    known = {s for a in parser._actions for s in a.option_strings}
    used = {w.split("=")[0] for w in words if w.startswith("-") and not re.fullmatch(r"-\d.*", w)}
    assert used <= known, f"{' '.join(path)} takes no {sorted(used - known)}"


def test_the_readme_python_block_runs(monkeypatch, capsys):
    if not (ROOT.parent / "shared" / "data" / "pretrained").is_dir():
        pytest.skip("the README's paths need ../shared/data beside the project")
    monkeypatch.chdir(ROOT)
    blocks = _code_blocks("python")
    space = {}
    exec(compile(blocks[0], "README.md", "exec"), space)
    report = capsys.readouterr().out
    assert "20 of 20 layers ternary" in report and re.search(r"^linear +linear +640 ttn ", report, re.M)
    # conv1's codes and scale are TWN's by hand: Δ = 0.7·mean|W|, α = mean |W| over |W| > Δ
    w = space["model"].conv1.weight.detach().double()
    keep = w.abs() > 0.7 * w.abs().mean()
    assert space["codes"].tolist() == (torch.sign(w) * keep).to(torch.int8).tolist()
    assert float(space["scale"]) == pytest.approx(float(w.abs()[keep].mean()), rel=1e-6)
