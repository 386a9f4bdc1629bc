"""`modelbased list` shows each algorithm's default steps and a measured time per 1k steps,
read from `modelbased/step_times.json`, which `benchmarks/step_time.py` writes from its stored
records (so every figure there is one of a record, never typed by hand)."""

import json
from pathlib import Path

import modelbased as mb
from modelbased.cli import main, step_times, time_line

ROOT = Path(__file__).resolve().parents[1]


def test_list_shows_steps_and_time_per_1k_for_every_algorithm(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name, cls in mb.ALGORITHMS.items():
        block = out.split(f"  {name} ", 1)[1].splitlines()
        assert f"{cls.default_steps} steps" in block[0]
        assert "per 1k steps" in block[1]


def test_every_shipped_time_is_a_stored_record():
    times = step_times()
    records = json.loads((ROOT / "benchmarks" / "results" / "step_time.json").read_text())
    for algo, entry in times["algorithms"].items():
        assert algo in mb.ALGORITHMS
        index = int(entry["record"].rsplit("#", 1)[1])
        fig = records[index]["figures"]
        assert fig["algo"] == algo and fig["steps"] == entry["steps"]
        assert round(fig["cpu_s_per_1k"], 3) == entry["cpu_s_per_1k"]


def test_time_line():
    assert time_line(None, 100) == "time per 1k steps not measured yet"
    entry = {"cpu_s_per_1k": 30.0, "steps": 400}
    assert time_line(entry, 2000) == (
        "~30 CPU s per 1k steps, measured over the first 400; ~60 s for the default 2000"
    )
    assert time_line({"cpu_s_per_1k": 400.0, "steps": 1000}, 20000).endswith(
        "~2.2 h for the default 20000"
    )
