"""docs/results.md and the README's headline table are what ``benchmarks/report.py`` builds from
the stored records (so CI fails when they drift apart), and the report's own rules: which
records a summary uses, the markers, the check's exit status."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import _report  # noqa: E402
import report  # noqa: E402


def test_docs_and_readme_match_the_stored_records() -> None:
    proc = subprocess.run(
        [sys.executable, "benchmarks/report.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, (
        "docs/results.md or README.md differ from what benchmarks/report.py builds from "
        f"benchmarks/results/*.json; run `python benchmarks/report.py`:\n{proc.stdout[-4000:]}"
        f"{proc.stderr[-2000:]}"
    )


def test_check_fails_with_a_diff_when_a_generated_file_drifts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    doc, block = report.build()
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.BEGIN}\nold table\n{report.END}\noutro\n")
    monkeypatch.setattr(report, "README", readme)
    monkeypatch.setattr(report, "DOC", tmp_path / "docs" / "results.md")
    monkeypatch.setattr(report, "REPO", tmp_path)
    assert report.main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "-old table" in out and "differ from the records" in out
    assert report.main([]) == 0  # writes both
    assert readme.read_text() == f"intro\n{report.BEGIN}\n{block}\n{report.END}\noutro\n"
    assert (tmp_path / "docs" / "results.md").read_text() == doc
    assert report.main(["--check"]) == 0
    mtime = readme.stat().st_mtime_ns
    assert report.main([]) == 0 and readme.stat().st_mtime_ns == mtime  # untouched


def test_readme_needs_exactly_one_pair_of_markers() -> None:
    with pytest.raises(SystemExit, match="results:begin"):
        report.readme_with("x", "no markers here")
    text = f"a\n{report.BEGIN}\nb\n{report.END}\nc"
    assert report.readme_with("new", text) == f"a\n{report.BEGIN}\nnew\n{report.END}\nc"


def test_headline_has_at_most_twelve_rows_each_naming_its_record() -> None:
    _, block = report.build()
    rows = [line for line in block.splitlines() if line.startswith("| ") and "---" not in line]
    assert 1 <= len(rows) - 1 <= report.MAX_HEADLINE  # minus the header
    for row in rows[1:]:
        assert ".json` #" in row and "](docs/results.md#" in row


def test_readme_rows_use_records_with_provenance_only() -> None:
    _, block = report.build()
    rows = [line for line in block.splitlines() if line.startswith("| ") and ".json` #" in line]
    for row in rows:
        name, indices = row.split("`")[1].removesuffix(".json"), row.split("`")[2]
        used = {
            i
            for a, b in re.findall(r"#(\d+)(?:-(\d+))?", indices.split("]")[0])
            for i in range(int(a), int(b or a) + 1)
        }
        legacy = {r["_index"] for r in report.load(name) if r.get("legacy")}
        assert used and not used & legacy, row


def record(index: int, legacy: bool = False, **args: object) -> dict:
    return {"_index": index, "legacy": legacy, "args": args or None, "figures": {}}


def test_records_with_provenance_supersede_legacy_ones_and_settings_must_match() -> None:
    old = record(0, legacy=True)
    quick, full1, full2 = record(1, runs=2), record(2, runs=30), record(3, runs=30)
    chosen = _report.choose([old, quick, full1, full2], lambda r: _report.args_of(r).get("runs"))
    assert chosen.indices == (2, 3) and not chosen.legacy
    assert "#0 (legacy" in chosen.note and "#1 (other settings" in chosen.note
    only_legacy = _report.choose([old])
    assert only_legacy.indices == (0,) and only_legacy.legacy
    assert _report.LEGACY in only_legacy.note


def test_number_formats_are_fixed() -> None:
    assert _report.num(1603.0391) == "1603"
    assert _report.num(0.82352) == "0.824"
    assert _report.num(float("inf")) == "never"
    assert _report.steps(602.5) == "602.5" and _report.steps(4644.0) == "4644"
    assert _report.never(None) == "never" and _report.steps(None) == "-"
    assert _report.si(1078695.8) == "1.08M" and _report.si(54688.2) == "54.7k"
    assert _report.span([0, 1, 2, 5]) == "#0-2, #5"
