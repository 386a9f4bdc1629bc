"""Append-only result records for the speed benchmarks: each invocation adds one JSON record
(command line, git commit, date, load averages before and after, every figure) to a list in
``results/<name>.json``, so earlier records are never overwritten."""

from __future__ import annotations

import datetime
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import _common as common

REPO = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """``HEAD``'s hash, with ``-dirty`` if tracked files differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout

    dirty = git("status", "--porcelain", "--untracked-files=no").strip()
    return git("rev-parse", "HEAD").strip() + ("-dirty" if dirty else "")


def start_record() -> dict[str, Any]:
    """The fields known before the run: command line, commit, date, load averages."""
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "git_commit": git_commit(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "loadavg_before": os.getloadavg(),
    }


def append_record(name: str, record: dict[str, Any]) -> Path:
    """Add ``loadavg_after`` to ``record`` and append it to ``results/<name>.json`` (a JSON
    list, written atomically); refuses to touch a file that is not a list."""
    path = common.RESULTS / f"{name}.json"
    record = {**record, "loadavg_after": os.getloadavg()}
    records = json.loads(path.read_text()) if path.exists() else []
    if not isinstance(records, list):
        sys.exit(f"{path} is not a JSON list: not touching it; the record was:\n{record}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps([*records, record], indent=1, default=common._plain) + "\n")
    tmp.replace(path)
    return path
