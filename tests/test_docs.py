"""The pages' code blocks are run by the suite: README.md and docs/*.md as a reader follows them.

Every ``sh`` and ``python`` fenced block of these pages is executed here, in the page's order,
unless an HTML comment right before it marks it (the mark is invisible on GitHub):

- ``<!-- illustrative: <why it is not run> -->``: not run; the reason is required, e.g. it needs
  a real API key, a server that runs until Ctrl-C, or the package index.
- ``<!-- save-as: <file> -->`` (a ``python`` block): written to ``<file>`` in the page's working
  folder, for a later ``sh`` block of the page that must run it.

A page runs as one terminal session would: its ``sh`` blocks in ``bash -e -o pipefail``, one
after the other, each starting in the folder and with the exported variables the previous one
left; its ``python`` blocks (through Sybil) in one namespace, in the session's current folder.
The session starts at the root of a copy of the repository's files (tracked or not, less what
git ignores) with ``.venv``
linked to this environment, with ``SMSP_API_KEY`` and ``SMSP_BASE_URL`` pointing at the test
emulator, ``DAGSTER_HOME`` at the copy's ``dagster_home/`` (the shipped instance settings), and
every HTTP(S) proxy set to a closed local port, so that nothing can leave the machine: a block
that would call the real provider fails. Sybil's ``invisible-code-block`` comments hold the
little set-up a page leaves to its reader (a file to push).

Other languages (``yaml``, ``sql``, ``toml``, ``text``) are not commands. A block in any other
language, or with more than the language on its fence line, fails
:func:`test_every_block_is_run_or_marked`, which is how a block can be neither run nor marked.

Cheap guards on the pages' prose ride along: backticked repository paths exist, ``smsp``
options exist in its command, ``make`` targets exist in the Makefile, ``SMSP_*`` variables are
read by the code, and every figure of the deployment pages names its benchmark file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from .conftest import API_KEY
from .instances import copy_storages

# In the dev extra; skipped, with this reason in the summary, in an environment that predates it.
pytest.importorskip("sybil", reason="sybil is not installed: `make install` (the dev extra)")

from sybil import Document, Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

pytestmark = pytest.mark.repo  # reads this repository's own pages and Makefile

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN = ("sh", "python")
"""The languages of blocks a reader is told to run: each is executed or marked."""
DATA = ("yaml", "sql", "toml", "text")
"""Configuration, queries and output: shown, not run as such."""
MARK = re.compile(r"<!--\s*(?P<kind>illustrative|save-as):\s*(?P<argument>[^\n]*?)\s*-->\s*\Z")
BLOCK_TIMEOUT = 420
"""Seconds for one sh block (a `dg launch` on a loaded machine takes about a minute)."""
DEAD_PROXY = "http://127.0.0.1:9"
"""Where any request that is not to loopback goes: nothing listens on the discard port."""


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    start: int
    end: int
    info: str
    source: str
    mark: str | None
    argument: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def mark_before(text: str, start: int) -> tuple[str | None, str]:
    """The mark in the HTML comment right before a block (blank lines allowed between)."""
    found = MARK.search(text[:start].rstrip() + "\n")
    return (found["kind"], found["argument"]) if found else (None, "")


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced block of a page, whatever its fence line says (Sybil's own lexer)."""
    lexer = RawFencedCodeBlockLexer(info_pattern=re.compile(r"(?P<info>[^\n]*)$\n", re.M))
    document = Document(path.read_text(encoding="utf-8"), str(path))
    blocks = []
    for region in lexer(document):
        kind, argument = mark_before(document.text, region.start)
        blocks.append(
            Block(
                path=path,
                line=document.text.count("\n", 0, region.start) + 1,
                start=region.start,
                end=region.end,
                info=region.lexemes["info"].strip(),
                source=str(region.lexemes["source"]),
                mark=kind,
                argument=argument,
            )
        )
    return blocks


ALL_BLOCKS = [block for path in DOCS for block in fenced_blocks(path)]
RUN_PAGES = sorted({block.path for block in ALL_BLOCKS if block.info in RUN and not block.mark})
"""The pages with at least one block to run (docs/benchmarks.md has none)."""


def test_every_block_is_run_or_marked():
    problems = []
    for block in ALL_BLOCKS:
        if block.info not in RUN + DATA:
            problems.append(
                f"{block.where}: fence says {block.info!r}: use exactly one of {RUN} (run by "
                f"tests/test_docs.py unless marked) or {DATA}"
            )
        elif block.mark and block.info not in RUN:
            problems.append(f"{block.where}: a {block.info} block is never run: no mark needed")
        elif block.mark == "illustrative" and len(block.argument.split()) < 3:
            problems.append(f"{block.where}: say why it is illustrative, in a few words")
        elif block.mark == "save-as":
            later = [
                other
                for other in ALL_BLOCKS
                if other.path == block.path and other.start > block.start and other.mark is None
            ]
            if block.info != "python" or not block.argument:
                problems.append(f"{block.where}: save-as takes a file name, on a python block")
            elif not any(other.info == "sh" and block.argument in other.source for other in later):
                problems.append(
                    f"{block.where}: saved as {block.argument}, which no later executed sh "
                    "block of the page runs"
                )
    assert not problems, "\n".join(problems)


def counts() -> dict[str, tuple[int, int]]:
    """Per page: (blocks executed, blocks illustrative); printed by ``-s`` for reports."""
    result = {}
    for path in DOCS:
        blocks = [block for block in ALL_BLOCKS if block.path == path and block.info in RUN]
        illustrative = sum(block.mark == "illustrative" for block in blocks)
        result[str(path.relative_to(ROOT))] = (len(blocks) - illustrative, illustrative)
    return result


# ---------------------------------------------------------------------------------------------
# The pages, run.


class ShellSession:
    """The page's terminal: each sh block in a fresh bash that starts where the last one
    ended (folder and exported variables), in its own process group, killed afterwards."""

    def __init__(self, cwd: Path, env: dict[str, str], state: Path) -> None:
        self.state = state
        state.mkdir()
        self.env_file = state / "env.sh"
        self.cwd_file = state / "cwd"
        self.cwd_file.write_text(str(cwd))
        self.env_file.write_text(
            "".join(f"export {name}={_quoted(value)}\n" for name, value in env.items())
        )
        self.base_env = env
        self.ran: list[str] = []

    @property
    def cwd(self) -> Path:
        return Path(self.cwd_file.read_text().strip())

    def __call__(self, example: Example) -> None:
        where = f"{Path(example.path).relative_to(ROOT)}:{example.line}"
        script = self.state / "block.sh"
        script.write_text(str(example.parsed))
        wrapper = textwrap.dedent(f"""\
            set -eo pipefail
            cd "$(cat {self.cwd_file})"
            . {self.env_file}
            . {script}
            export -p | grep -v -E '^declare -x (PWD|OLDPWD|SHLVL|_)=' > {self.env_file}
            pwd > {self.cwd_file}
            """)
        process = subprocess.Popen(
            ["bash", "-c", wrapper],
            env=self.base_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            stdout, stderr = process.communicate()
            raise AssertionError(
                f"{where}: still running after {BLOCK_TIMEOUT} s\n{stdout[-2000:]}\n"
                f"{stderr[-3000:]}"
            ) from None
        finally:
            _kill_group(process.pid)
        self.ran.append(f"{where}\n{stdout}{stderr}")
        assert process.returncode == 0, (
            f"{where}: the block exited {process.returncode}\n--- stdout\n{stdout[-3000:]}\n"
            f"--- stderr\n{stderr[-5000:]}"
        )


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)


def repository_copy(target: Path) -> Path:
    """The repository's tracked files as the working tree has them, with ``.venv`` linked to
    the environment running the tests: where a reader who cloned it stands."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(sys.prefix)
    return target


@pytest.fixture
def session_env(emulator, tmp_path) -> Iterator[tuple[Path, dict[str, str]]]:
    root = repository_copy(tmp_path / "repo")
    home = root / "dagster_home"
    # Create the instance's storage first, as `dagster dev` does (two processes creating a
    # fresh SQLite storage at once race in its migrations).
    copy_storages(home)
    bin_dir = str(Path(sys.prefix) / "bin")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SMSP_", "DAGSTER_", "PYTEST_", "VIRTUAL_ENV"))
        and name not in ("PYTHONPATH", "PGPASSWORD")
    }
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(tmp_path / "home"),
        TMPDIR=str(tmp_path),
        SMSP_API_KEY=API_KEY,
        SMSP_BASE_URL=emulator.base_url,
        # The default file, as an absolute path (what a deployment sets, deploying.md §1).
        SMSP_DUCKDB_PATH=str(root / "data" / "warehouse.duckdb"),
        DAGSTER_HOME=str(home),
        HTTP_PROXY=DEAD_PROXY,
        HTTPS_PROXY=DEAD_PROXY,
        http_proxy=DEAD_PROXY,
        https_proxy=DEAD_PROXY,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PIP_NO_INDEX="1",
    )
    (tmp_path / "home").mkdir()
    yield root, env


def run_page(path: Path, root: Path, env: dict[str, str], state: Path, monkeypatch) -> list[str]:
    """Runs a page's blocks in order; returns what the sh blocks printed."""
    shell = ShellSession(root, env, state)
    sybil = Sybil(
        parsers=[PythonCodeBlockParser(), CodeBlockParser(language="sh", evaluator=shell)],
        patterns=["*.md"],
    )
    document = sybil.parse(path)
    for name in ("SMSP_API_KEY", "SMSP_BASE_URL", "SMSP_DUCKDB_PATH", "DAGSTER_HOME", "HOME"):
        monkeypatch.setenv(name, env[name])
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, env[name])
    for name in [name for name in os.environ if name.startswith("SMSP_")]:
        if name not in env:
            monkeypatch.delenv(name)
    executed = 0
    for example in document.examples():
        kind, argument = mark_before(document.text, example.region.start)
        if kind == "illustrative":
            continue
        monkeypatch.chdir(shell.cwd)
        if kind == "save-as":
            Path(argument).write_text(str(example.parsed))
            continue
        example.evaluate()
        executed += 1
        defs = document.namespace.get("defs")
        if isinstance(defs, dg.Definitions):
            # A page's code location must load, as `dg check defs` would load it.
            dg.Definitions.validate_loadable(defs)
    assert executed, f"{path.name}: no block ran"
    return shell.ran


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("page", RUN_PAGES, ids=[str(path.relative_to(ROOT)) for path in RUN_PAGES])
def test_the_page_runs(page, session_env, tmp_path, monkeypatch):
    root, env = session_env
    run_page(page, root, env, tmp_path / "shell", monkeypatch)


# ---------------------------------------------------------------------------------------------
# Guards on the prose.

INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
PATH_LIKE = re.compile(r"^[\w.-]+(?:/[\w.*-]+)*/?$")
SOURCE_SUFFIXES = (".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".png", ".txt")
SMSP_PACKAGES = ("cli", "client", "emulator", "intake", "operations", "warehouse")
"""``smsp_connector``'s subpackages, which the pages name without the package (`intake/...`)."""
OUTSIDE = {
    "smspartner-api.md": "the provider's API, in the shared spec next to the repository",
    "spec/seeds/000_*.txt": "the provider's pages, in the shared spec next to the repository",
    "backup_warehouse.py": "the script deploying.md §7.1 has the reader save",
    "defs/accounts/main/defs.yaml": "what `dg scaffold defs` writes in the reader's project",
    "dagster_celery/core_execution_loop.py": "dagster-celery's source; not installed here",
}
"""Files the pages name that are not the repository's, and why."""


def prose(path: Path) -> str:
    """A page without its fenced blocks (their lines kept blank, so line numbers hold)."""
    text = path.read_text(encoding="utf-8")
    for block in fenced_blocks(path):
        span = text[block.start : block.end]
        text = text[: block.start] + "\n" * span.count("\n") + text[block.end :]
    return text


def inline_code(path: Path) -> Iterator[tuple[int, str]]:
    text = prose(path)
    for found in INLINE_CODE.finditer(text):
        yield text.count("\n", 0, found.start()) + 1, found.group(1).strip()


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode()  # fmt: skip
    return [name for name in listed.split("\0") if name and (ROOT / name).exists()]


def names_a_repository_file(token: str, top_level: set[str]) -> bool:
    if not PATH_LIKE.match(token) or token.startswith("."):
        return False
    first = token.split("/", 1)[0]
    return ("/" in token and (first in top_level or first in SMSP_PACKAGES)) or token.rstrip(
        "/"
    ).endswith(SOURCE_SUFFIXES)


def found_at(token: str, files: list[str]) -> bool:
    """In the repository (from its root, or from ``smsp_connector/``, or a file name found
    anywhere in it), or in an installed package (Dagster's sources, which the pages quote)."""
    name = token.rstrip("/")
    roots = [ROOT, ROOT / "smsp_connector"]
    first = name.split("/", 1)[0]
    if "/" in name and re.fullmatch(r"[a-z_]+", first):
        try:
            import importlib.util

            spec = importlib.util.find_spec(first)
        except (ImportError, ValueError):
            spec = None
        if spec and spec.submodule_search_locations:
            roots.append(Path(next(iter(spec.submodule_search_locations))).parent)
    if any(next(iter(root.glob(name)), None) is not None for root in roots):
        return True
    return "/" not in name and any(Path(file).name == name for file in files)


def test_every_backticked_path_exists():
    files = tracked_files()
    top_level = {file.split("/", 1)[0] for file in files}
    missing = [
        f"{path.relative_to(ROOT)}:{line}: `{token}`"
        for path in DOCS
        for line, token in inline_code(path)
        if names_a_repository_file(token, top_level)
        and token not in OUTSIDE
        and not found_at(token, files)
    ]
    for path in DOCS:
        for found in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", prose(path)):
            target = found.group(1)
            if not re.match(r"[a-z]+:", target) and not (path.parent / target).exists():
                missing.append(f"{path.relative_to(ROOT)}: link to {target}")
    assert not missing, "no such file in the repository:\n" + "\n".join(missing)


def commands_in_pages() -> Iterator[tuple[str, str]]:
    """``(where, line)`` for every line of a block, and every inline code span, of the pages."""
    for block in ALL_BLOCKS:
        for offset, line in enumerate(block.source.splitlines()):
            yield f"{block.where.rsplit(':', 1)[0]}:{block.line + 1 + offset}", line
    for path in DOCS:
        for line, token in inline_code(path):
            yield f"{path.relative_to(ROOT)}:{line}", token


def test_every_smsp_option_in_the_pages_exists():
    import click

    from smsp_connector.cli import main

    problems = []
    for where, line in commands_in_pages():
        for found in re.finditer(
            r"(?:^\s*|[;&|(]\s*)(?:\w+=\S+\s+)*(?:\S*/)?smsp"
            r"((?:\s+--[a-z][\w-]*(?:=|\s+)[\w./-]+)*)((?:\s+[a-z][\w-]*)*)([^#]*)",
            line,
        ):
            global_options = {opt for param in main.params for opt in param.opts}
            for option in re.findall(r"--[a-z][\w-]*", found.group(1)):
                if option not in global_options:
                    problems.append(f"{where}: `smsp {option}`: no such option")
            command: click.Command = main
            words = found.group(2).split()
            while words and isinstance(command, click.Group) and words[0] in command.commands:
                command = command.commands[words.pop(0)]
            known = {"--help"} | {opt for param in command.params for opt in param.opts}
            for option in re.findall(r"(?<![\w-])--[a-z][\w-]*", found.group(3)):
                if option not in known:
                    problems.append(f"{where}: `{command.name} {option}`: no such option")
    assert not problems, "\n".join(problems)


def test_every_make_target_in_the_pages_exists():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    problems = [
        f"{where}: make {target}"
        for where, line in commands_in_pages()
        for target in re.findall(r"(?:^|\s)make ([a-z][\w-]*)", line)
        if target not in targets
    ]
    assert not problems, "no such target in the Makefile:\n" + "\n".join(problems)


def test_every_smsp_variable_in_the_pages_is_read_by_the_code_and_in_the_table():
    from smsp_connector.settings import API_KEY_VAR, ENVIRONMENT, HMAC_KEY_VAR, RATE_LIMIT_DSN_VAR

    code = "\n".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "smsp_connector").rglob("*.py")
    )
    unknown = sorted(
        {
            f"{path.relative_to(ROOT)}: {name}"
            for path in DOCS
            for name in re.findall(r"\bSMSP_[A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8"))
            if not re.search(rf"\b{name}\b", code)
        }
    )
    assert not unknown, "read nowhere in smsp_connector/:\n" + "\n".join(unknown)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("### Configuration") : readme.index("### Assets")]
    settings = [*ENVIRONMENT, API_KEY_VAR, HMAC_KEY_VAR, RATE_LIMIT_DSN_VAR]
    assert [name for name in settings if f"| `{name}` |" not in table] == []


MEASURED = re.compile(r"\b\d[\d,.]*\s?(?:MiB|GiB|MB|adds/s)\b|\b\d[\d,.]*/s\b")
"""A measured figure: memory, a body's size, a rate."""
SOURCE = re.compile(r"benchmarks/\w+\.py|tests/test_\w+\.py")


def test_every_figure_names_the_benchmark_or_test_it_comes_from():
    """In the README, deploying.md and operations.md, a paragraph stating a measured figure
    names its benchmark (or test) file; a table, in the paragraph just before it. Figures in
    code spans (settings' values) are not measurements."""
    problems = []
    for name in ("README.md", "docs/deploying.md", "docs/operations.md"):
        text = prose(ROOT / name).replace("(1 GiB)", "")  # SMSP_MAX_INPUT_BYTES' default
        blanked = INLINE_CODE.sub(lambda found: "`" + "x" * len(found.group(1)) + "`", text)
        paragraphs = re.split(r"\n\s*\n", text)
        figures_in = re.split(r"\n\s*\n", blanked)
        for index, paragraph in enumerate(paragraphs):
            before = paragraphs[index - 1] if index else ""
            rows = paragraph.lstrip().startswith("|")
            lines = zip(paragraph.split("\n"), figures_in[index].split("\n"), strict=True)
            for row, shown in lines if rows else [(paragraph, figures_in[index])]:
                figures = MEASURED.findall(shown)
                if figures and not SOURCE.search(row) and not (rows and SOURCE.search(before)):
                    problems.append(f"{name}: {figures} in: {row.strip()[:120]}")
    assert not problems, "\n".join(problems)
