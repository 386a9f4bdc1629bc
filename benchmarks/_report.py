"""What ``benchmarks/report.py`` builds on: the :class:`Section` a benchmark's formatter returns,
the registry of formatters, which stored records a summary uses, and markdown with fixed number
formats. Light on purpose (no torch): the report reads JSON only.

A formatter is registered once per results file, in the family module of its benchmark
(``_report_dyna.py``, ``_report_models.py``, ``_report_pets.py``, ``_report_mbpo.py``,
``_report_search.py``, ``_report_speed.py``)::

    @formatter("dyna_maze", "Dyna", "Dyna maze (S&B fig. 8.2)", "python benchmarks/dyna_maze.py")
    def dyna_maze(records: list[dict]) -> Section: ...

It receives every record of ``results/<name>.json`` (never an empty list: report.py writes the
"no record yet" section itself), each with its position in the file under ``"_index"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import _stats

FAMILIES = (
    "Dyna",
    "World models",
    "PETS and MPC",
    "SAC and MBPO",
    "Tree search",
    "Speed",
    "Reliability and scale",
)
LEGACY = "legacy record: figures as stored, no provenance"


@dataclass(frozen=True)
class Headline:
    """One row of the README's table: what is measured, the figure, the records it comes from."""

    what: str
    figure: str
    records: tuple[int, ...]


@dataclass
class Section:
    """What a formatter gives for one results file."""

    conclusion: str  # one sentence that states only what the used records show
    tables: list[str]  # markdown: each a caption line, a blank line and a table
    method: str  # how it is measured (markdown paragraph)
    used: str  # which records the tables use, and how (all, median over records/seeds)
    plot: str | None = None  # file name in benchmarks/results/, drawn by the script
    headline: list[Headline] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # caveats the data calls for


@dataclass(frozen=True)
class Entry:
    name: str  # results/<name>.json
    family: str
    title: str
    rerun: str  # the command that appends a record
    fn: Callable[[list[dict[str, Any]]], Section]


REGISTRY: dict[str, Entry] = {}


def formatter(
    name: str, family: str, title: str, rerun: str
) -> Callable[
    [Callable[[list[dict[str, Any]]], Section]], Callable[[list[dict[str, Any]]], Section]
]:
    """Register ``fn`` as the formatter of ``results/<name>.json``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")

    def register(fn: Callable[[list[dict[str, Any]]], Section]) -> Any:
        if name in REGISTRY:
            raise ValueError(f"two formatters for {name}")
        REGISTRY[name] = Entry(name, family, title, rerun, fn)
        return fn

    return register


# -- which records a summary uses ----------------------------------------------------------------
def args_of(record: dict[str, Any]) -> dict[str, Any]:
    """The script's arguments: the record's, or for a legacy record those stored in its figures."""
    return record.get("args") or record["figures"].get("args") or {}


def is_legacy(record: dict[str, Any]) -> bool:
    return bool(record.get("legacy"))


@dataclass
class Choice:
    used: list[dict[str, Any]]
    note: str

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(r["_index"] for r in self.used)

    @property
    def medians_note(self) -> str:
        """The note, saying the figures are medians over records when several were pooled."""
        return self.note + ("; medians over records" if len(self.used) > 1 else "")

    @property
    def legacy(self) -> bool:
        return any(is_legacy(r) for r in self.used)


def choose(
    records: Sequence[dict[str, Any]],
    config: Callable[[dict[str, Any]], Any] = lambda r: None,
    what: str = "records",
) -> Choice:
    """The records a summary uses: the records with provenance if there are any (legacy records
    are then left out), else the legacy ones; of those, the ones run with the same settings
    (``config(record)``) as the latest. The note says which were used and why others were not."""
    if not records:
        return Choice([], f"no {what}")
    fresh = [r for r in records if not is_legacy(r)]
    pool = fresh or list(records)
    ref = config(pool[-1])
    used = [r for r in pool if config(r) == ref]
    left = [r for r in records if r not in used]
    note = f"{what} {span([r['_index'] for r in used])}"
    if len(used) > 1:
        note += f" ({len(used)} records, pooled)"
    if any(is_legacy(r) for r in used):
        note += f" ({LEGACY})"
    reasons = []
    legacy_left = [r["_index"] for r in left if is_legacy(r)]
    other = [r["_index"] for r in left if not is_legacy(r)]
    if legacy_left:
        reasons.append(f"{span(legacy_left)} (legacy, superseded by records with provenance)")
    if other:
        reasons.append(f"{span(other)} (other settings than the latest record)")
    if reasons:
        note += "; not used: " + ", ".join(reasons)
    return Choice(used, note)


def span(indices: Sequence[int], prefix: str = "#") -> str:
    """``#0``, ``#2-4, #7``: record positions (or seeds, ``prefix=""``), runs collapsed."""
    if not indices:
        return "none"
    parts: list[str] = []
    start = prev = indices[0]
    for cur in [*indices[1:], None]:
        if cur is not None and cur == prev + 1:
            prev = cur
            continue
        parts.append(f"{prefix}{start}" if start == prev else f"{prefix}{start}-{prev}")
        if cur is not None:
            start = prev = cur
    return ", ".join(parts)


# -- numbers and markdown ------------------------------------------------------------------------
def num(x: Any, digits: int = 3, none: str = "-") -> str:
    """``x`` with ``digits`` significant digits, integers in full (``1603`` not ``1.6e+03``);
    ``None`` as ``none``, ``inf`` as ``never``."""
    if x is None:
        return none
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    x = float(x)
    if math.isnan(x):
        return none
    if math.isinf(x):
        return "never" if x > 0 else "-never"
    if x == int(x) and abs(x) >= 1:
        return str(int(x))
    if abs(x) >= 10 ** (digits - 1):
        return str(round(x))
    if abs(x) < 1e-3 and x != 0:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def steps(x: Any) -> str:
    """A step count or a median of step counts (``602.5``); ``None`` as ``-``, ``inf`` as
    ``never``."""
    if x is None:
        return "-"
    if isinstance(x, float) and (math.isinf(x) or x != int(x)):
        return "never" if math.isinf(x) else f"{x:.1f}"
    return str(int(x))


def never(x: Any) -> str:
    """A step count where ``None`` means the threshold was never reached."""
    return "never" if x is None else steps(x)


def si(x: float | None, digits: int = 3) -> str:
    """A rate with a k/M suffix: ``54.7k``, ``1.08M``."""
    if x is None:
        return "-"
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.{digits}g}{suffix}"
    return num(x, digits)


def fixed(x: Any, decimals: int, none: str = "-") -> str:
    """``x`` with a fixed number of decimals."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return none
    if isinstance(x, float) and math.isinf(x):
        return "never"
    return f"{x:.{decimals}f}"


def pct(x: float | None, decimals: int = 0) -> str:
    return "-" if x is None else f"{100 * x:.{decimals}f}%"


def times(x: float | None, decimals: int = 2) -> str:
    """A ratio, ``1.44x``."""
    return "-" if x is None or math.isnan(x) else f"{x:.{decimals}f}x"


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` when both are finite and ``b`` is not zero."""
    if a is None or b is None or not b or math.isinf(a) or math.isinf(b):
        return None
    return a / b


def per_seed(values: Sequence[Any], fmt: Callable[[Any], str] = num) -> str:
    return " / ".join(fmt(v) for v in values)


def stat_cells(values: Sequence[float | None], fmt: Callable[[Any], str] = num) -> list[str]:
    """``median [95% CI]`` and ``IQM [95% CI]`` over seeds (``None``: never reached)."""
    if not values:
        return ["-", "-"]
    s = _stats.summarize(values)
    return [
        f"{fmt(s['median'])} [{fmt(s['median_ci'][0])}, {fmt(s['median_ci'][1])}]",
        f"{fmt(s['iqm'])} [{fmt(s['iqm_ci'][0])}, {fmt(s['iqm_ci'][1])}]",
    ]


NOT_MEASURED = "not measured (stopped at the crossing)"


def stay_cell(run: dict[str, Any] | None) -> str:
    """A run's reach-and-stay step (``never``), or why it has none (stopped at the crossing)."""
    if not run:
        return "-"
    return never(run["steps_to_threshold_and_stay"]) if run["stay_measured"] else NOT_MEASURED


def median(values: Sequence[float | None]) -> float | None:
    """The median, ``None`` for no values (``None`` values count as never: ``inf``)."""
    return _stats.median(values) if values else None


def reach(runs: Sequence[dict[str, Any]], threshold: float) -> tuple[str, list[Any], str]:
    """The threshold figure to quote for ``runs`` (each with ``first_crossing``,
    ``steps_to_threshold_and_stay``, ``stay_measured``): reach-and-stay when every run measured
    it, else the first crossing. Returns a label, the per-run values and a clause saying how many
    runs hold the threshold to the end (or that the runs stopped at the crossing)."""
    if runs and all(r["stay_measured"] for r in runs):
        values = [r["steps_to_threshold_and_stay"] for r in runs]
        held = sum(v is not None for v in values)
        return (
            f"real steps from which the evals stay >= {threshold:g}",
            values,
            f"{held} of {len(values)} runs hold it to their last eval",
        )
    values = [r["first_crossing"] for r in runs]
    stopped = sum(not r["stay_measured"] for r in runs)
    clause = (
        "the runs stopped at that crossing, so whether the return holds is not measured"
        if stopped == len(runs)
        else f"{stopped} of {len(runs)} runs stopped at that crossing (whether their return holds "
        "is not measured), so the first crossings are compared"
    )
    return f"real steps to the first eval >= {threshold:g}", values, clause


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> str:
    """A markdown table (cells as given, ``None`` as ``-``), after an optional caption line."""
    lines = [f"{caption}", ""] if caption else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {row} has {len(row)} cells for {len(header)} columns")
        lines.append("| " + " | ".join("-" if c is None else str(c) for c in row) + " |")
    return "\n".join(lines)


def record_label(record: dict[str, Any]) -> str:
    return f"#{record['_index']}" + (" (legacy)" if is_legacy(record) else "")


def legacy_notice(records: Sequence[dict[str, Any]]) -> list[str]:
    """The note a section carries when it reports legacy records."""
    legacy = [r["_index"] for r in records if is_legacy(r)]
    if not legacy:
        return []
    return [
        f"Record {span(legacy)}: {LEGACY} (no command, commit, seeds list or load average was "
        "kept; dated by the commit that last wrote the file). Rerun the script to replace it."
    ]
