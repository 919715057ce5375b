"""Every shell command in README.md and docs/*.md runs as written, from the repository root.

The rule, read from the docs themselves:

- A command is a line of a ```bash (sh, shell) block; a trailing ``\\`` continues it, ``#``
  starts a comment (a comment line directly above a command belongs to it).
- Its tags are the words of its comments, or of a ``<!-- doc-test: ... -->`` line right
  above the block (then for every command of the block):
  * ``GPU only``: needs a GPU, a cluster or a model download; not run here.
  * ``run by CI``: an install or test command that ``.ci/run`` performs (running it here
    would reinstall this venv, or run this suite inside itself). Each of its ``&&`` steps
    must be in ``.ci/run`` (``-q`` aside), except training steps, which run as below.
  * ``tested in tests/<file>.py``: a run of minutes (verl's loop on a CPU) that the named
    slow test performs; that file must exist and name the command's config.
- Every other command runs with bash from the repository root, with ``openvlthinker`` and
  ``openvlthinker-verl`` running this checkout's code, and must exit 0. It may not be an
  install or test command (tag it). ``openvlthinker train`` commands run in the two-step
  smoke form docs/engine.md documents, their outputs under a temporary folder.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELLS = {"bash", "sh", "shell"}
GPU_ONLY, RUN_BY_CI = "gpu only", "run by ci"
TESTED_IN = re.compile(r"tested in (tests/\S+\.py)")
#: The smoke form of a training command, as docs/engine.md states it.
SMOKE = (
    "trainer.total_steps=2 trainer.test_freq=2 trainer.save_freq=2 data.max_val_records=1 "
    "rollout.max_new_tokens=8 trainer.progress_bar=false"
)
INSTALL_OR_TEST = re.compile(r"^(\S+/)?(pip3?|pytest)\b|^python3?(\.\d+)? -m (pip|venv|pytest)\b")
TRAIN = re.compile(r"^openvlthinker train\b")


@dataclass(frozen=True)
class Command:
    page: str
    line: int
    text: str
    tags: str  # the comments' words, lower case

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def _split_comment(line: str) -> tuple[str, str]:
    """(code, comment) of a shell line: ``#`` after a blank, outside quotes."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def doc_commands(page: Path) -> list[Command]:
    lines = page.read_text(encoding="utf-8").splitlines()
    name = str(page.relative_to(REPO)) if page.is_relative_to(REPO) else page.name
    out: list[Command] = []
    block_tag, in_block, above, pending, start = "", False, [], "", 0
    for number, raw in enumerate(lines, start=1):
        fence = re.match(r"^```(\w*)\s*$", raw)
        if fence and not in_block:
            in_block = fence.group(1) in SHELLS
            previous = next((x for x in reversed(lines[: number - 1]) if x.strip()), "")
            tag = re.match(r"^<!--\s*doc-test:(.*)-->\s*$", previous)
            block_tag = tag.group(1).strip() if tag and in_block else ""
            above = []
            continue
        if not in_block:
            continue
        if fence:
            in_block = False
            continue
        code, comment = _split_comment(raw)
        if not code.strip():
            above = [*above, comment] if comment else []
            continue
        if not pending:
            start = number
        if code.endswith("\\"):
            pending += code[:-1].strip() + " "
            above += [comment] if comment else []
            continue
        text = (pending + code.strip()).strip()
        tags = " ".join(x for x in (block_tag, *above, comment) if x).lower()
        out.append(Command(name, start, text, tags))
        pending, above = "", []
    return out


ALL = [c for page in PAGES for c in doc_commands(page)]


def _steps(command: Command) -> list[str]:
    return [s.strip() for s in command.text.split("&&")]


def _normalised(text: str) -> str:
    return " ".join(t for t in shlex.split(text) if t != "-q")


def _runs() -> list[tuple[str, str]]:
    """(where, command to run) for every command that runs here, the first of each text."""
    runs: dict[str, str] = {}
    for c in ALL:
        if GPU_ONLY in c.tags or TESTED_IN.search(c.tags):
            continue
        steps = _steps(c) if RUN_BY_CI in c.tags else [c.text]
        for step in steps:
            if RUN_BY_CI in c.tags and not TRAIN.match(step):
                continue
            runs.setdefault(step, c.where)
    return [(where, text) for text, where in runs.items()]


def test_the_docs_hold_the_commands_a_new_user_types_first():
    texts = [c.text for c in ALL]
    readme_setup = next(t for t in texts if t.startswith("python3 -m venv .venv"))
    assert readme_setup.endswith("&& openvlthinker train --config configs/tiny_cpu.yaml")
    assert texts.count('. .venv/bin/activate && python -m pytest -q -m "slow or not slow"') == 1
    runs = dict((text, where) for where, text in _runs())
    assert "openvlthinker train --config configs/tiny_cpu.yaml" in runs
    assert any("check_only=true" in t and t.startswith("openvlthinker-verl") for t in runs)
    gpu = [c.text for c in ALL if GPU_ONLY in c.tags]
    assert any(t.startswith("sbatch ") for t in gpu)
    assert any("model.path=/ckpt/Qwen3-VL-8B-Instruct" in t for t in gpu)


def test_the_parser_joins_continuations_and_reads_tags(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n<!-- doc-test: GPU only -->\n```bash\nrun a   # one\n```\n\n```bash\n"
        "# GPU only: above\nrun b \\\n    --x 'a # not a comment'  # trailing\n\n"
        'run c "#x"\n```\n```python\nnot_shell()\n```\n'
    )
    found = [(c.line, c.text, c.tags) for c in doc_commands(page)]
    assert found == [
        (4, "run a", "gpu only one"),
        (9, "run b --x 'a # not a comment'", "gpu only: above trailing"),
        (12, 'run c "#x"', ""),
    ]


@pytest.mark.parametrize("command", [c for c in ALL if RUN_BY_CI in c.tags], ids=lambda c: c.where)
def test_commands_run_by_ci_are_in_ci_run(command):
    ci = [_normalised(line) for line in (REPO / ".ci/run").read_text().splitlines()]
    for step in _steps(command):
        assert TRAIN.match(step) or _normalised(step) in ci, f"{command.where}: {step!r}"


@pytest.mark.parametrize(
    "command", [c for c in ALL if TESTED_IN.search(c.tags)], ids=lambda c: c.where
)
def test_commands_tested_elsewhere_name_a_test_that_runs_them(command):
    test = REPO / TESTED_IN.search(command.tags).group(1)
    assert test.is_file(), f"{command.where}: {test} does not exist"
    config = re.search(r"--config-name[ =](\S+)|--config[ =](\S+)", command.text)
    # the config it runs (verl: --config-name) or, for a subcommand, the subcommand's name
    name = Path(config.group(1) or config.group(2)).stem if config else ""
    if command.text.startswith("openvlthinker "):
        name = command.text.split()[1]
    assert name and name in test.read_text(), f"{command.where}: {test} never mentions {name!r}"


UNTAGGED = [
    c
    for c in ALL
    if GPU_ONLY not in c.tags and RUN_BY_CI not in c.tags and not TESTED_IN.search(c.tags)
]


@pytest.mark.parametrize("command", UNTAGGED, ids=lambda c: c.where)
def test_untagged_commands_are_not_installs_or_test_runs(command):
    assert not INSTALL_OR_TEST.search(command.text), (
        f"{command.where}: {command.text!r} installs or runs the tests: tag it 'run by CI' "
        "(and keep it in .ci/run) or 'GPU only'"
    )


def test_the_smoke_form_is_the_one_docs_engine_md_states():
    text = " ".join((REPO / "docs/engine.md").read_text().split())
    assert f"`{SMOKE}` appended" in text


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """PATH with console scripts running this checkout, and a folder for run outputs."""
    root = tmp_path_factory.mktemp("doc_commands")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name, module in (
        ("openvlthinker", "openvlthinker.cli"),
        ("openvlthinker-verl", "openvlthinker.verl_plugin.main"),
    ):
        script = bin_dir / name
        script.write_text(
            f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -c "
            f"'import sys; from {module} import main; sys.exit(main())' \"$@\"\n"
        )
        script.chmod(0o755)
    env = dict(
        os.environ,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(REPO),
        OMP_NUM_THREADS="1",
    )
    return root, env


@pytest.mark.slow
@pytest.mark.parametrize(("where", "text"), _runs(), ids=[w for w, _ in _runs()])
def test_documented_command_runs_as_written(where, text, sandbox):
    root, env = sandbox
    command = text
    if TRAIN.match(text):
        outputs = root / "outputs"
        command += f" {SMOKE} model.cache_dir={shlex.quote(str(root / 'tiny'))} " + shlex.quote(
            f"trainer.out_dir={outputs}/${{trainer.experiment_name}}"
        )
    before = set((REPO / "outputs").iterdir()) if (REPO / "outputs").is_dir() else set()
    try:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:  # Hydra's run folder of a verl command: not ours to keep in the checkout
        if (REPO / "outputs").is_dir():
            for new in set((REPO / "outputs").iterdir()) - before:
                shutil.rmtree(new)
    assert done.returncode == 0, f"{where}: {command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    if TRAIN.match(text):
        assert "finished step 2 " in done.stderr, done.stderr[-3000:]
