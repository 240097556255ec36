"""The benchmark runs end to end at a tiny scale and reports what it measured.

It is a measurement, so nothing here checks speed: only that every method ran
(positive times and rows), that the table and the JSON agree, and that the
ratios and verdicts are computed from the measured values."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

METHODS = {
    "limit": "limit",
    "naive_subset": "naive (measured subset)",
    "naive": "naive (EXTRAPOLATED to full files)",
    "ours": "ours",
    "rollup": "rollup (UP loaded)",
    "ours_half": "ours, half snapshot (scale 0.001; flat check)",
    "national_night1": "national night 1, 1 state (snapshots; setup, untargeted)",
    "national_delta": "national delta night 2, 1 state",
    "rollup_national": "rollup (1 state loaded)",
}


def _num(text: str) -> float:
    return float(text.replace(",", "").replace("(extrapolated)", "").strip())


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out, raw = tmp / "BENCHMARKS.md", tmp / "bench.json"
    env = dict(os.environ, MOU_DATA_DIR=str(tmp / "data"))
    # GA delivers a snapshot every day, so its night 2 has rows even at this scale.
    proc = subprocess.run(
        [sys.executable, "-m", "mou_etl.bench", "--scale", "0.002", "--delta-scale", "0.001", "--delta-state", "GA",
         "--naive-rows", "2000", "--out", str(out), "--json", str(raw)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return {"md": out.read_text(encoding="utf-8"), "json": json.loads(raw.read_text(encoding="utf-8")),
            "stdout": proc.stdout, "data": tmp / "data"}


def _table(md: str) -> dict[str, dict]:
    rows = {}
    section = md.split("## Results", 1)[1].split("## Ratios", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or cells[0] in ("method", "") or set(cells[1]) <= {"-", ":"}:
            continue
        rows[cells[0]] = {"rows": _num(cells[1]), "seconds": _num(cells[2]), "rows_per_s": _num(cells[3]),
                          "cpu": _num(cells[4]), "rss": _num(cells[5])}
    return rows


def test_every_method_measured(bench_run):
    table = _table(bench_run["md"])
    for key, method in METHODS.items():
        assert method in table, f"{method!r} missing from the table:\n{bench_run['md']}"
        row = table[method]
        assert row["rows"] > 0 and row["seconds"] > 0 and row["rss"] > 0, (method, row)
    results = {r["key"]: r for r in bench_run["json"]["results"]}
    assert set(results) == set(METHODS)
    for key, method in METHODS.items():
        r = results[key]
        assert r["method"] == method
        assert r["seconds"] > 0 and r["rows"] > 0 and r["peak_rss_mib"] > 0
        assert abs(table[method]["seconds"] - r["seconds"]) <= 0.006
        assert table[method]["rows"] == r["rows"]
    # the same files for limit, naive (extrapolated to them) and ours
    assert results["limit"]["rows"] == results["naive"]["rows"] == results["ours"]["rows"]
    assert results["naive_subset"]["rows"] < results["naive"]["rows"]
    assert results["naive"]["extrapolated"] and not results["ours"]["extrapolated"]
    # the flat check doubles: the full snapshot has about twice the half one's rows
    assert 1.8 <= results["ours"]["rows"] / results["ours_half"]["rows"] <= 2.2


def test_ratios_and_verdicts_come_from_the_measurements(bench_run):
    md, raw = bench_run["md"], bench_run["json"]
    r = {x["key"]: x for x in raw["results"]}
    assert raw["ratios"]["ours_over_limit"] == pytest.approx(r["ours"]["seconds"] / r["limit"]["seconds"])
    assert raw["ratios"]["naive_over_ours"] == pytest.approx(r["naive"]["seconds"] / r["ours"]["seconds"])
    assert raw["ratios"]["rss_growth_x2"] == pytest.approx(r["ours"]["peak_rss_mib"] / r["ours_half"]["peak_rss_mib"] - 1)

    # limit, ours and the flat check ran twice each: the faster wall time, the higher peak RSS
    for key in ("limit", "ours", "ours_half"):
        m = re.search(r"faster of 2 runs \(wall s: ([\d.]+), ([\d.]+)\), peak RSS the highest \(MiB: (\d+), (\d+)\)",
                      r[key]["note"])
        assert m, r[key]["note"]
        assert r[key]["seconds"] == pytest.approx(min(float(m.group(1)), float(m.group(2))), abs=0.01)
        assert r[key]["peak_rss_mib"] == pytest.approx(max(int(m.group(3)), int(m.group(4))), abs=1)

    # the printed ratios are the quotient of the printed values
    m = re.search(r"ours / limit = ([\d.,]+) s / ([\d.,]+) s = \*\*([\d.,]+)x\*\*", md)
    assert m, md
    assert _num(m.group(3)) == pytest.approx(_num(m.group(1)) / _num(m.group(2)), rel=0.02, abs=0.01)
    m = re.search(r"naive / ours = ([\d.,]+) s \(extrapolated\) / ([\d.,]+) s = \*\*([\d.,]+)x\*\*", md)
    assert m, md
    assert _num(m.group(3)) == pytest.approx(_num(m.group(1)) / _num(m.group(2)), rel=0.02, abs=0.1)

    verdicts = {t["target"]: t["ok"] for t in raw["targets"]}
    assert len(verdicts) == 6
    assert verdicts["UP snapshot end to end <= 3x limit"] == (raw["ratios"]["ours_over_limit"] <= 3)
    assert verdicts[">= 20x faster than naive"] == (raw["ratios"]["naive_over_ours"] >= 20)
    assert verdicts["national delta night <= 120 s"] == (r["national_delta"]["seconds"] <= 120)
    assert verdicts["rollup <= 30 s"] == (r["rollup"]["seconds"] <= 30)
    for t in raw["targets"]:
        assert re.search(rf"\| {re.escape(t['target'])} \| .* \| \*\*{'PASS' if t['ok'] else 'FAIL'}\*\* \|", md), t


def test_report_header_and_cleanup(bench_run):
    md = bench_run["md"]
    for needle in ("**Command**: `python -m mou_etl.bench --scale 0.002", "**Machine**:", "cores", "GiB RAM",
                   "**Load average**", "DuckDB", "**backend** duckdb", "EXTRAPOLATED"):
        assert needle in md, needle
    assert md in bench_run["stdout"]
    # the bench folder is removed without --keep
    bench_dir = bench_run["data"] / "bench"
    assert not bench_dir.exists() or not any(bench_dir.iterdir())
