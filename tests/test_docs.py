"""The README and docs/ state what the code does: their Python snippets run as written, their
links resolve inside the repository, the names they cite exist, the config keys in their
algorithm tables are real keys, the command-line synopsis matches the parser, and the README's
test command is the one CI runs.

Snippets run per file, all ```python blocks of a file in order as one script (a later block may
use what an earlier one defined), in a fresh interpreter in a temporary directory, so files they
write land there and agents they register stay out of this process. A block preceded by the line
``<!-- no-test -->`` is left out.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import modelbased as mb
from modelbased.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOC_FILES = [README, *sorted((ROOT / "docs").glob("*.md"))]
# written by `python benchmarks/report.py`; links to it are checked once it exists
GENERATED = {ROOT / "docs" / "results.md"}
NO_TEST = "<!-- no-test -->"
RESULTS_MARKERS = ("<!-- results:begin -->", "<!-- results:end -->")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def fenced_blocks(path: Path) -> list[tuple[int, str, str, bool]]:
    """``(line, language, code, opted_out)`` of every fenced block of a markdown file."""
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^```([\w-]*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        before = [line.strip() for line in lines[:i] if line.strip()]
        opted_out = bool(before) and before[-1] == NO_TEST
        blocks.append((i + 1, fence.group(1), "\n".join(lines[i + 1 : end]), opted_out))
        i = end + 1
    return blocks


def prose(path: Path) -> str:
    """The file without its fenced blocks and inline code spans (where links are not links)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


# -- snippets --------------------------------------------------------------------------------------
SNIPPET_FILES = [p for p in DOC_FILES if any(b[1] == "python" for b in fenced_blocks(p))]


def test_readme_has_a_python_snippet():
    assert README in SNIPPET_FILES


@pytest.mark.parametrize("path", SNIPPET_FILES, ids=rel)
def test_python_snippets_run(path: Path, tmp_path: Path):
    parts = [
        f"# --- {rel(path)}, block at line {line}\n{code}\n"
        for line, lang, code, opted_out in fenced_blocks(path)
        if lang == "python" and not opted_out
    ]
    script = tmp_path / "snippets.py"
    script.write_text("\n".join(parts))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{rel(path)}'s snippets failed:\n{done.stderr[-4000:]}"


# -- links -------------------------------------------------------------------------------------
def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors of the headings of a markdown file."""
    anchors: set[str] = set()
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    for heading in re.findall(r"^#+\s+(.*?)\s*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, n = slug, 1
        while candidate in anchors:
            candidate, n = f"{slug}-{n}", n + 1
        anchors.add(candidate)
    return anchors


@pytest.mark.parametrize("path", DOC_FILES, ids=rel)
def test_relative_links_resolve(path: Path):
    problems = []
    for target in re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", prose(path)):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.is_relative_to(ROOT):
            problems.append(f"{target}: points outside the repository")
        elif dest in GENERATED and not dest.exists():
            continue
        elif not dest.exists():
            problems.append(f"{target}: no such file")
        elif anchor and anchor not in heading_anchors(dest):
            problems.append(f"{target}: no heading #{anchor} in {rel(dest)}")
    assert not problems, f"{rel(path)}: " + "; ".join(problems)


# -- cited names -------------------------------------------------------------------------------
NAME = re.compile(r"\b(?:modelbased|mb)(?:\.[A-Za-z_]\w*)+")


def resolve(name: str) -> object:
    """The object ``modelbased.a.b.c`` (or ``mb.a.b``) names: the longest importable module
    prefix, then attributes."""
    parts = ["modelbased", *name.split(".")[1:]]
    for k in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:k]))
        except ModuleNotFoundError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(name)


@pytest.mark.parametrize("path", DOC_FILES, ids=rel)
def test_cited_names_exist(path: Path):
    missing = []
    for name in sorted(set(NAME.findall(path.read_text()))):
        try:
            resolve(name)
        except (AttributeError, ModuleNotFoundError):
            missing.append(name)
    assert not missing, f"{rel(path)} cites names the package does not have: {missing}"


# -- config keys in the algorithm tables ---------------------------------------------------------
KEY = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*(\.\*)?$")


def config_keys(algo: str) -> dict[str, object]:
    """Every dotted key of an algorithm's default config, sections included, with its value."""
    out: dict[str, object] = {}

    def walk(values: dict, prefix: str) -> None:
        for key, value in values.items():
            out[prefix + key] = value
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")

    walk(mb.agent_class(algo).Config().to_dict(), "")
    return out


def table_rows(path: Path) -> list[tuple[list[str], list[str]]]:
    """``(header, row)`` cells of every data row of every table in the file."""
    rows, header = [], None
    for line in path.read_text().splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not all(set(c) <= set("-: ") for c in cells):
            rows.append((header, cells))
    return rows


@pytest.mark.parametrize("path", DOC_FILES, ids=rel)
def test_table_keys_are_config_keys(path: Path):
    problems = []
    for header, cells in table_rows(path):
        names = [h.strip("` ") for h in header]
        if "ALGO" not in names or not any(n.startswith("key") for n in names):
            continue
        algo_cell = cells[names.index("ALGO")]
        key_cell = cells[next(i for i, n in enumerate(names) if n.startswith("key"))]
        algos = re.findall(r"`([^`]+)`", algo_cell)
        unknown = [a for a in algos if a not in mb.ALGORITHMS]
        problems += [f"unknown algorithm {a}" for a in unknown]
        for algo in (a for a in algos if a not in unknown):
            keys = config_keys(algo)
            for key in (k for k in re.findall(r"`([^`]+)`", key_cell) if KEY.match(k)):
                section = key.removesuffix(".*")
                if section not in keys or (
                    key.endswith(".*") and not isinstance(keys[section], dict)
                ):
                    problems.append(f"{algo} has no key {key}")
    assert not problems, f"{rel(path)}: " + "; ".join(problems)


# -- the command line ------------------------------------------------------------------------------
def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_readme_cli_synopsis_matches_the_parser():
    blocks = [code for _, lang, code, _ in fenced_blocks(README) if not lang]
    synopsis = next(c for c in blocks if c.startswith("modelbased "))
    verbs = subcommands()
    listed = {}
    for line in synopsis.splitlines():
        verb = line.split()[1]
        assert verb in verbs, f"README lists `modelbased {verb}`, which does not exist"
        listed[verb] = set(re.findall(r"--[a-z][a-z-]*", line))
    assert set(listed) == set(verbs), "the README's synopsis and the parser's verbs differ"
    for verb, flags in listed.items():
        options = {o for o in verbs[verb]._option_string_actions if o.startswith("--")}
        options.discard("--help")
        assert flags == options, (
            f"modelbased {verb}: README lists {flags}, the parser has {options}"
        )


def test_ci_runs_the_readme_install_and_test_command():
    line = next(
        code for _, lang, code, _ in fenced_blocks(README) if lang == "bash" and '".[test]"' in code
    )
    readme_steps = [s for s in line.split(" && ") if not s.startswith("python3 -m venv")]
    ci_steps = []
    for ci_line in (ROOT / ".ci" / "run").read_text().splitlines():
        if ci_line.startswith(".venv/bin/") and "--upgrade pip" not in ci_line:
            ci_steps += ci_line.replace(" --quiet", "").split(" && ")
    assert readme_steps == ci_steps


def test_readme_results_markers():
    lines = README.read_text().splitlines()
    begin, end = (lines.index(m) for m in RESULTS_MARKERS)
    assert begin < end
    assert all(lines.count(m) == 1 for m in RESULTS_MARKERS)
