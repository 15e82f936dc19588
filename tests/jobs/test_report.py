"""The run report: statistics from a unit frame, the page's sections, and a real render in Chromium."""

from __future__ import annotations

import os
import re
import struct
import subprocess
from pathlib import Path

import pytest

from jobs.report import SECTIONS, bin_edges, collect_stats, funnel_steps, render_html, write_report

CHROMIUM = Path("/usr/bin/chromium")
PLOTS = ["plot-funnel", "plot-reasons", "plot-lengths", "plot-tokens", "plot-languages", "plot-clusters",
         "plot-budget", "plot-splits"]


def realistic_manifest() -> dict:
    """A run over 5 sources with every stage reporting, numbers made to add up by hand."""
    sources = {"redpajama_web": "cpt", "arxiv": "cpt", "forum": "cpt", "alpaca": "sft", "hh_rlhf": "preference"}
    # source: (input, rejected, dropped, output)
    per = {"redpajama_web": (5200, 40, 1450, 3710), "arxiv": (1300, 0, 230, 1070), "forum": (900, 12, 290, 598),
           "alpaca": (2100, 21, 160, 1919), "hh_rlhf": (1500, 9, 60, 1431)}
    rejected = {"malformed_json": 50, "empty_text": 20, "bad_role_order": 12}
    dropped = {"too_short": 420, "language": 180, "over_max_seq_len": 60, "exact_duplicate": 510,
               "near_duplicate": 720, "over_budget": 300}
    assert sum(p[1] for p in per.values()) == sum(rejected.values())
    assert sum(p[2] for p in per.values()) == sum(dropped.values())
    counts = {"input": 11000, "output": 8728, "rejected": rejected, "dropped": dropped,
              "output_by_kind": {"cpt": 5378, "sft": 1919, "preference": 1431}}
    assert counts["input"] == counts["output"] + sum(rejected.values()) + sum(dropped.values())
    edges = bin_edges(14)

    def hist(peak: int, total: int) -> dict:
        weights = [max(0, 6 - abs(i - peak)) for i in range(14)]
        counts_ = [total * w // sum(weights) for w in weights]
        counts_[peak] += total - sum(counts_)
        return {"bins": edges, "counts": counts_}

    out = {s: p[3] for s, p in per.items()}
    return {
        "corpusmill_version": "0.1.0", "config_sha256": "ab" * 32, "balanced": True,
        "config": {"output": {"path": "s3://corpus/runs/2026-11-23"}},
        "counts": counts,
        "sources": {s: {"kinds": {k: out[s]}, "counts": {"input": per[s][0], "output": per[s][3],
                                                           "rejected": {"x": per[s][1]}, "dropped": {"y": per[s][2]}}}
                    for s, k in sources.items()},
        "stages": {
            "filter": {"enabled": True, "lang_backend": "langdetect"},
            "dedup": {"enabled": True, "counts": {"exact_dropped": 510, "near_dropped": 720},
                      "cluster_sizes": {"1": 9000, "2": 400, "3": 120, "4": 40, "6": 9, "12": 2, "40": 1}},
            # as jobs/budget.py reports it: the token budget under "tokens", per-kind budgets by kind
            "budget": {"enabled": True,
                       "tokens": {"unit": "tokens", "target": 6_000_000, "achieved": 5_450_000, "sources": {
                           "redpajama_web": {"target": 3_600_000, "available": 4_100_000, "selected": 3_600_000},
                           "arxiv": {"target": 1_500_000, "available": 1_150_000, "selected": 1_150_000},
                           "forum": {"target": 900_000, "available": 700_000, "selected": 700_000}}},
                       "sft": {"unit": "records", "target": 1900, "sources": {
                           "alpaca": {"target": 1900, "available": 1919, "selected": 1900}}}},
            "split": {"seed": 0},
        },
        "splits": {
            "train": {"rows": 8300, "tokens": 7_000_000, "sources": {s: {"rows": int(out[s] * 0.95), "tokens": out[s] * 760}
                                                                     for s in sources}},
            "val": {"rows": 300, "tokens": 250_000, "sources": {s: {"rows": int(out[s] * 0.03), "tokens": out[s] * 25}
                                                                for s in sources}},
            "test": {"rows": 128, "tokens": 110_000, "sources": {s: {"rows": int(out[s] * 0.02), "tokens": out[s] * 12}
                                                                 for s in sources}},
        },
        "stats": {
            "length_hist": {k: {s: hist(9 + i, out[s]) for i, s in enumerate(sources) if sources[s] == k}
                            for k in ("cpt", "sft", "preference")},
            "token_hist": {k: {s: hist(7 + i, out[s]) for i, s in enumerate(sources) if sources[s] == k}
                           for k in ("cpt", "sft", "preference")},
            "lang": {"cpt": {"en": 4900, "zh": 300, "de": 178}, "sft": {"en": 1800, "zh": 119}, "preference": {"en": 1431}},
            "lang_by_source": {"redpajama_web": {"en": 3400, "de": 178, "zh": 132}, "arxiv": {"en": 1070},
                               "forum": {"en": 430, "zh": 168}, "alpaca": {"en": 1800, "zh": 119}, "hh_rlhf": {"en": 1431}},
        },
        "timings_s": {"normalize": 41.2, "filter": 88.0, "dedup": 130.5, "budget": 12.1, "split": 9.8, "write": 60.3},
    }


def test_funnel_steps_subtract_rejects_then_each_stage_drops():
    steps = dict(funnel_steps(realistic_manifest()))
    # By hand: 11000 - 82 rejected = 10918; filter 420+180+60 = 660; dedup 510+720 = 1230; budget 300.
    assert steps == {"read": 11000, "normalize": 10918, "filter": 10258, "dedup": 9028, "budget": 8728,
                     "output": 8728}


def test_funnel_prefers_measured_progress_and_stage_reported_drops():
    m = realistic_manifest()
    m["progress"] = [{"stage": "ingest", "records_in": None, "records_out": 11000},
                     {"stage": "normalize", "records_in": 11000, "records_out": 10918},
                     {"stage": "filter", "records_in": 10918, "records_out": 10258}]
    assert funnel_steps(m) == [("read", 11000), ("normalize", 10918), ("filter", 10258), ("output", 8728)]
    m.pop("progress")
    # A reason no name rule knows lands in "other drops", unless its stage reports it.
    m["counts"]["dropped"]["minhash_cluster"] = m["counts"]["dropped"].pop("near_duplicate")
    assert dict(funnel_steps(m))["dedup"] == 9748 and dict(funnel_steps(m))["other drops"] == 8728
    m["stages"]["dedup"]["dropped"] = {"minhash_cluster": 720, "exact_duplicate": 510}
    steps = dict(funnel_steps(m))
    assert steps["dedup"] == 9028 and "other drops" not in steps


def test_every_section_has_its_plot():
    page = render_html(realistic_manifest())
    for sid, title in SECTIONS:
        assert f'<section id="{sid}"><h2>{title}</h2>' in page
    for plot in PLOTS:
        assert f'id="{plot}"' in page
    assert "Not computed in this run" not in page
    # Self-contained: plotly.js inline, nothing loaded from anywhere.
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)


def test_budget_tables_read_flat_and_nested_reports():
    from jobs.report import budget_tables

    flat = {"sources": {"a": {"target": 10, "selected": 9}}}
    assert budget_tables(flat) == [("budget", "tokens", flat["sources"])]
    nested = realistic_manifest()["stages"]["budget"]
    assert [(t, u, sorted(s)) for t, u, s in budget_tables(nested)] == [
        ("token budget", "tokens", ["arxiv", "forum", "redpajama_web"]), ("sft budget (records)", "records", ["alpaca"])]
    assert budget_tables({"enabled": False}) == []


def test_sections_without_data_say_so():
    m = {"counts": {"input": 10, "output": 9, "rejected": {"malformed_json": 1}, "dropped": {}}, "balanced": True}
    page = render_html(m)
    assert page.count("Not computed in this run") == 6  # lengths, tokens, languages, clusters, budget, splits
    assert 'id="plot-funnel"' in page and 'id="plot-reasons"' in page


def test_write_report_writes_report_html(tmp_path):
    path = write_report(realistic_manifest(), str(tmp_path / "out"))
    assert path == f"{tmp_path}/out/report.html"
    assert Path(path).stat().st_size > 4_000_000  # plotly.js is inlined


def test_collect_stats_by_hand(spark):
    from pyspark.sql import Row

    from jobs.common.schema import UNIT_STRUCT

    def unit(**kw):
        base = dict.fromkeys(UNIT_STRUCT.fieldNames())
        base.update(kw)
        return Row(**base)

    msg = lambda role, content: Row(role=role, content=content, tool_calls=None, name=None, reasoning=None)  # noqa: E731
    rows = [
        unit(kind="cpt", source="web", text="abcde", lang="en", n_tokens=2, cluster_id="c1"),  # 5 chars -> bin 3
        unit(kind="cpt", source="web", text="a" * 8, lang="en", n_tokens=1, cluster_id="c1",
             drop_reason="near_duplicate"),  # dropped: only in cluster sizes
        unit(kind="cpt", source="web", text="", lang="zh", n_tokens=0),  # 0 chars -> bin 0
        unit(kind="cpt", source="books", text="x" * 1024, lang="de", n_tokens=None, cluster_id="c2"),  # bin 11
        unit(kind="cpt", source="books", text="y" * 3, lang="de", n_tokens=None, cluster_id="c2"),  # bin 2
        unit(kind="cpt", source="books", text="z" * 9, lang="de", n_tokens=None, cluster_id="c2",
             drop_reason="exact_duplicate"),
        # sft: system 4 + user 6 + assistant 7 = 17 chars -> bin 5 (16..31); 16 tokens -> bin 5
        unit(kind="sft", source="chat", system="sys!", messages=[msg("user", "hello?"), msg("assistant", "answer.")],
             lang="en", n_tokens=16),
        # preference: prompt 3 + chosen 2 + rejected 1 = 6 chars -> bin 3
        unit(kind="preference", source="pairs", prompt=[msg("user", "q?!")], chosen=[msg("assistant", "ok")],
             rejected=[msg("assistant", "n")], lang="en", n_tokens=3),
        unit(kind="cpt", source="web", reject_reason="malformed_json", raw="{"),  # rejected: nowhere
    ]
    stats = collect_stats(spark.createDataFrame(rows, UNIT_STRUCT))
    n = 12  # bins 0..11 (the largest value, 1024, is in bin 11)
    assert stats["length_hist"]["cpt"]["web"] == {"bins": bin_edges(n), "counts": [1, 0, 0, 1] + [0] * 8}
    assert stats["length_hist"]["cpt"]["books"]["counts"] == [0, 0, 1] + [0] * 8 + [1]
    assert stats["length_hist"]["sft"]["chat"]["counts"] == [0] * 5 + [1] + [0] * 6
    assert stats["length_hist"]["preference"]["pairs"]["counts"] == [0, 0, 0, 1] + [0] * 8
    assert bin_edges(n)[11:13] == [1024, 2048]
    # tokens: web 2 -> bin 2, 0 -> bin 0; chat 16 -> bin 5; pairs 3 -> bin 2; books has none
    assert stats["token_hist"]["cpt"] == {"web": {"bins": bin_edges(6), "counts": [1, 0, 1, 0, 0, 0]}}
    assert stats["token_hist"]["sft"]["chat"]["counts"] == [0, 0, 0, 0, 0, 1]
    assert stats["lang"] == {"cpt": {"de": 2, "en": 1, "zh": 1}, "preference": {"en": 1}, "sft": {"en": 1}}
    assert stats["lang_by_source"]["books"] == {"de": 2}
    assert stats["cluster_sizes"] == {"2": 1, "3": 1}


def test_power_of_two_bin_is_exact_at_every_power_of_two(spark):
    from pyspark.sql import functions as F

    from jobs.report import power_of_two_bin

    values = sorted({0, *(x for k in range(62) for x in ((1 << k) - 1, 1 << k, (1 << k) + 1))})
    df = spark.createDataFrame([(v,) for v in values], "v long")
    got = {r["v"]: r["b"] for r in df.select("v", power_of_two_bin(F.col("v")).alias("b")).collect()}
    assert got == {v: v.bit_length() for v in values}  # bin k holds 2**(k-1) <= v < 2**k


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def _chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess:
    # Offline on purpose: every request that is not file:// goes to a proxy that is not there, so a
    # page that needed the network would show no plots.
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
           f"--user-data-dir={user_data}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        reason = "headless Chromium not installed (/usr/bin/chromium; Debian package `chromium`)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " -- required under CI")
        pytest.skip(reason)
    return CHROMIUM


def test_report_renders_in_headless_chromium(chromium, tmp_path):
    url = "file://" + write_report(realistic_manifest(), str(tmp_path / "out"))
    shot = Path(os.environ.get("CORPUSMILL_REPORT_SCREENSHOT") or tmp_path / "report.png")
    done = _chromium(f"--screenshot={shot}", "--window-size=1400,4000", "--virtual-time-budget=15000", url,
                     user_data=tmp_path / "profile-shot")
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 100_000, "a blank page compresses to a few kB"
    assert _png_size(shot) == (1400, 4000)

    dom = _chromium("--dump-dom", "--virtual-time-budget=15000", url, user_data=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    for _sid, title in SECTIONS:
        assert f"<h2>{title}</h2>" in page
    # plotly.js ran: every container got its drawn SVG and the bars/funnel/axis text of its data.
    for plot in PLOTS:
        container = re.search(rf'<div id="{plot}" class="[^"]*js-plotly-plot[^"]*"', page)
        assert container, f"{plot} was not drawn by plotly.js"
    assert page.count('class="main-svg"') >= 2 * len(PLOTS)
    assert "redpajama_web" in page and "near_duplicate" in page and "over_budget" in page


# --------------------------------------------------------------------------- jobs.progress (feeds the funnel)
def _fake_clock(step: float = 2.0):
    ticks = iter(range(10_000))
    return lambda: next(ticks) * step


def test_progress_console_lines_and_summary():
    from jobs.progress import Progress

    lines: list[str] = []
    progress = Progress("console", emit=lines.append, clock=_fake_clock())
    with progress.stage("normalize") as p:
        p.records_out = 10918
    with progress.stage("filter", records_in=10918) as p:
        p.records_out = 10258
    assert lines[0] == "[corpusmill] normalize  start"
    assert lines[1].startswith("[corpusmill] normalize  done   10,918 records")
    assert lines[3].startswith("[corpusmill] filter     done   10,918 -> 10,258 records (-660)")
    assert lines[3].rstrip().endswith("2.0s  total     8.0s")  # clock: start 0; stages at 2-4, 6-8
    assert progress.summary() == [
        {"stage": "normalize", "records_in": None, "records_out": 10918, "elapsed_s": 2.0, "status": "done", "detail": ""},
        {"stage": "filter", "records_in": 10918, "records_out": 10258, "elapsed_s": 2.0, "status": "done", "detail": ""}]
    manifest = realistic_manifest() | {"progress": progress.summary()}
    assert funnel_steps(manifest) == [("read", 11000), ("normalize", 10918), ("filter", 10258), ("output", 8728)]


def test_progress_quiet_prints_nothing_but_keeps_the_numbers(capsys):
    from jobs.progress import Progress

    progress = Progress("quiet", clock=_fake_clock())
    with progress.stage("dedup", 100) as p:
        p.records_out = 90
    assert capsys.readouterr() == ("", "")
    assert progress.summary()[0]["records_out"] == 90


def test_progress_logs_on_a_cluster_and_reports_failures(caplog):
    import logging

    from jobs.progress import Progress

    assert Progress.for_run(quiet=True, master="yarn", submitted=True).mode == "quiet"
    assert Progress.for_run(master="local[2]", submitted=True).mode == "console"
    assert Progress.for_run(master="k8s://https://api:6443", submitted=True).mode == "log"
    assert Progress.for_run(master="yarn", submitted=False).mode == "console"
    progress = Progress("log", clock=_fake_clock())
    with caplog.at_level(logging.INFO, logger="corpusmill.progress"):
        with pytest.raises(RuntimeError), progress.stage("budget", 50):
            raise RuntimeError("boom")
    assert [r.levelname for r in caplog.records] == ["INFO", "ERROR"]
    assert "stage=budget event=failed records_in=50" in caplog.records[-1].getMessage()
    assert progress.summary()[0]["status"] == "failed"
