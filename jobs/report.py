"""``<output>/report.html``: one self-contained page of plots about a run, drawn from its manifest.

The page inlines plotly.js (about 4.8 MB), so it opens offline, from a bucket download or an e-mail
attachment. Each section is drawn when the manifest holds its data and says "not computed in this
run" otherwise, so the report is useful from the first stages on and grows with them.

Manifest keys read (all optional except ``counts``):

    counts                     {input, output, rejected: {reason: n}, dropped: {reason: n}, ...}
    progress                   [{stage, records_in, records_out, elapsed_s}]   (jobs.progress.Progress.summary())
    stages.<stage>.dropped     {reason: n}: drops a stage reports itself (otherwise reasons are
                               attributed by name: see ``STAGE_OF_REASON``)
    stats.length_hist          {kind: {source: {"bins": [edge0, ..., edgeN], "counts": [c0, ..., cN-1]}}}
    stats.token_hist           same shape, over ``n_tokens``                     (``collect_stats``)
    stats.lang                 {kind: {lang: n}};  stats.lang_by_source  {source: {lang: n}}
    stages.dedup.cluster_sizes {size: clusters} (sizes >= 2 drawn; or stats.cluster_sizes from ``collect_stats``)
    stages.budget.sources      {source: {"target": n, "selected": n, "available": n?}}, or the same under
                               stages.budget.tokens.sources / stages.budget.<kind>.sources (+ "unit")
    splits                     {split: {rows, tokens, sources: {source: {rows, tokens}}}}
                               (or stages.split.counts {split: {source: rows}})
    timings_s                  {stage: seconds}

``collect_stats(units)`` computes the ``stats`` block from the final unit frame with Spark
aggregations (histograms over power-of-two bins: exact integer bounds, mergeable across runs).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# Drop reasons by the stage that sets them, when a stage does not report its own drops.
STAGE_OF_REASON: list[tuple[str, tuple[str, ...]]] = [
    ("filter", ("too_short", "too_long", "language", "over_max_seq_len", "quality", "filtered")),
    ("dedup", ("duplicate", "exact_duplicate", "near_duplicate", "duplicate_of", "decontaminat", "contaminat")),
    ("budget", ("over_budget", "budget")),
]
FUNNEL_STAGES = ("filter", "dedup", "budget")
SECTIONS = [
    ("summary", "Run summary"),
    ("funnel", "Record funnel"),
    ("lengths", "Length distribution (characters)"),
    ("tokens", "Token-count distribution"),
    ("languages", "Language mix"),
    ("clusters", "Near-duplicate cluster sizes"),
    ("budget", "Token budget per source"),
    ("splits", "Split sizes"),
]


# --------------------------------------------------------------------------- statistics (Spark)
def power_of_two_bin(value: Column) -> Column:
    """0 for 0, k for 2**(k-1) <= value < 2**k (null stays null).

    log2 gives the estimate; exact powers of two correct it, since log(2**k)/log(2) can land just under k.
    Pass a plain column: the expression references it several times.
    """
    from pyspark.sql import functions as F

    v = value.cast("long")
    guess = F.floor(F.log2(F.greatest(v, F.lit(1)))).cast("int")

    def two_to(k: Column) -> Column:  # exact: Java's pow is exact when the result is representable
        return F.pow(F.lit(2.0), k).cast("long")

    exact = F.when(two_to(guess) > v, guess - 1).when(two_to(guess + 1) <= v, guess + 1).otherwise(guess)
    return F.when(v.isNull(), F.lit(None).cast("int")).when(v <= 0, F.lit(0)).otherwise(exact + 1)


def bin_edges(n_bins: int) -> list[int]:
    """Edges of bins 0..n_bins-1: [0, 1, 2, 4, ...]; bin k holds edges[k] <= v < edges[k+1]."""
    return [0] + [1 << i for i in range(n_bins)]


def _content_chars(df: DataFrame) -> Column:
    """Characters a trainer reads: text, system and every message's content (all turns, both responses)."""
    from pyspark.sql import functions as F

    parts = [F.coalesce(F.length(c), F.lit(0)) for c in ("text", "system") if c in df.columns]
    for c in ("messages", "prompt", "chosen", "rejected", "completion"):
        if c in df.columns:
            lengths = F.transform(F.col(c), lambda m: F.coalesce(F.length(m["content"]), F.lit(0)))
            parts.append(F.coalesce(F.aggregate(lengths, F.lit(0), lambda a, b: a + b), F.lit(0)))
    return sum(parts[1:], parts[0]) if parts else F.lit(0)


def _histograms(rows: list[Any]) -> dict[str, dict[str, dict[str, list[int]]]]:
    if not rows:
        return {}
    n_bins = max(r["bin"] for r in rows) + 1
    out: dict[str, dict[str, dict[str, list[int]]]] = {}
    for r in rows:
        hist = out.setdefault(r["kind"], {}).setdefault(r["source"], {"bins": bin_edges(n_bins),
                                                                       "counts": [0] * n_bins})
        hist["counts"][r["bin"]] += r["count"]
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def collect_stats(units: DataFrame) -> dict[str, Any]:
    """Length/token histograms and language mix of the output records, cluster sizes of all records.

    ``units`` is the final unit frame (rejects and drops included; they are left out of the
    distributions, which describe what is published). Two small aggregations, collected on the driver.
    """
    from pyspark.sql import functions as F

    good = units
    if "reject_reason" in units.columns:
        good = good.filter(F.col("reject_reason").isNull())
    if "drop_reason" in units.columns:
        good = good.filter(F.col("drop_reason").isNull())
    has_tokens = "n_tokens" in units.columns
    has_lang = "lang" in units.columns
    measured = good.select(
        "kind", "source", _content_chars(good).alias("chars"),
        (F.col("n_tokens") if has_tokens else F.lit(None).cast("long")).alias("n_tokens"),
        (F.col("lang") if has_lang else F.lit(None).cast("string")).alias("lang"))
    per_record = measured.select("kind", "source", power_of_two_bin(F.col("chars")).alias("len_bin"),
                                 power_of_two_bin(F.col("n_tokens")).alias("tok_bin"), "lang")
    stats: dict[str, Any] = {}
    grouped = per_record.groupBy("kind", "source", "len_bin", "tok_bin", "lang").count().collect()
    length_rows: dict[tuple[str, str, int], int] = {}
    token_rows: dict[tuple[str, str, int], int] = {}
    lang: dict[str, dict[str, int]] = {}
    lang_by_source: dict[str, dict[str, int]] = {}
    for r in grouped:
        key = (r["kind"], r["source"], r["len_bin"])
        length_rows[key] = length_rows.get(key, 0) + r["count"]
        if r["tok_bin"] is not None:
            tkey = (r["kind"], r["source"], r["tok_bin"])
            token_rows[tkey] = token_rows.get(tkey, 0) + r["count"]
        if r["lang"] is not None:
            lang.setdefault(r["kind"], {})[r["lang"]] = lang.get(r["kind"], {}).get(r["lang"], 0) + r["count"]
            by_src = lang_by_source.setdefault(r["source"], {})
            by_src[r["lang"]] = by_src.get(r["lang"], 0) + r["count"]

    def as_rows(d: dict[tuple[str, str, int], int]) -> list[dict[str, Any]]:
        return [{"kind": k, "source": s, "bin": b, "count": n} for (k, s, b), n in d.items()]

    stats["length_hist"] = _histograms(as_rows(length_rows))
    if token_rows:
        stats["token_hist"] = _histograms(as_rows(token_rows))
    if lang:
        stats["lang"] = {k: dict(sorted(v.items())) for k, v in sorted(lang.items())}
        stats["lang_by_source"] = {k: dict(sorted(v.items())) for k, v in sorted(lang_by_source.items())}
    if "cluster_id" in units.columns:
        sizes = (units.filter(F.col("cluster_id").isNotNull()).groupBy("cluster_id").count()
                 .filter(F.col("count") >= 2).groupBy("count").agg(F.count("*").alias("clusters")).collect())
        if sizes:
            stats["cluster_sizes"] = {str(r["count"]): r["clusters"] for r in sorted(sizes, key=lambda r: r["count"])}
    return stats


# --------------------------------------------------------------------------- figures (plotly)
def _go():
    try:
        import plotly.graph_objects as go
    except ImportError as exc:  # pragma: no cover - plotly is a dependency
        raise ImportError("the run report needs plotly: pip install 'plotly>=5'") from exc
    return go


def _layout(fig: Any, title: str, height: int = 420, **kwargs: Any) -> Any:
    layout = {"title": title, "template": "plotly_white", "height": height,
              "margin": {"l": 60, "r": 20, "t": 60, "b": 60}, **kwargs}
    fig.update_layout(**layout)
    return fig


def _colors(names: list[str]) -> dict[str, str]:
    """One fixed color per name, so a language or source has the same color in every panel."""
    from plotly.colors import qualitative

    palette = qualitative.Plotly + qualitative.D3 + qualitative.Set3
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def stage_of(reason: str) -> str:
    for stage, prefixes in STAGE_OF_REASON:
        if any(reason == p or reason.startswith(p) for p in prefixes):
            return stage
    return "other"


def funnel_steps(manifest: dict[str, Any]) -> list[tuple[str, int]]:
    """(step, records remaining) from input to output."""
    counts = manifest["counts"]
    progress = [p for p in manifest.get("progress") or [] if p.get("records_out") is not None
                and p.get("stage") not in ("ingest", "write")]
    if progress:  # measured by the pipeline itself (jobs.progress)
        return [("read", counts["input"]), *((p["stage"], p["records_out"]) for p in progress),
                ("output", counts["output"])]
    rejected = sum(counts.get("rejected", {}).values())
    steps = [("read", counts["input"]), ("normalize", counts["input"] - rejected)]
    drops = _drops_by_stage(manifest)
    remaining = counts["input"] - rejected
    stages = manifest.get("stages") or {}
    for stage in FUNNEL_STAGES:
        if stage in stages or drops.get(stage):
            remaining -= sum(drops.get(stage, {}).values())
            steps.append((stage, remaining))
    if drops.get("other"):
        remaining -= sum(drops["other"].values())
        steps.append(("other drops", remaining))
    steps.append(("output", counts["output"]))
    return steps


def _drops_by_stage(manifest: dict[str, Any]) -> dict[str, dict[str, int]]:
    stages = manifest.get("stages") or {}
    reported = {s: dict(r["dropped"]) for s, r in stages.items() if isinstance(r, dict) and isinstance(r.get("dropped"), dict)}
    attributed = {reason for d in reported.values() for reason in d}
    out: dict[str, dict[str, int]] = {s: dict(d) for s, d in reported.items()}
    for reason, n in (manifest["counts"].get("dropped") or {}).items():
        if reason not in attributed:
            out.setdefault(stage_of(reason), {})[reason] = n
    return out


def fig_funnel(manifest: dict[str, Any]) -> Any:
    go = _go()
    steps = funnel_steps(manifest)
    fig = go.Figure(go.Funnel(y=[s for s, _ in steps], x=[n for _, n in steps],
                              texttemplate="%{value:,} (%{percentInitial:.1%})"))
    return _layout(fig, "Records remaining after each stage", height=360, margin={"l": 90, "r": 10, "t": 50, "b": 30})


def fig_reasons(manifest: dict[str, Any]) -> Any | None:
    go = _go()
    bars: list[tuple[str, str, int]] = [("rejected (normalize)", r, n)
                                        for r, n in (manifest["counts"].get("rejected") or {}).items()]
    for stage, reasons in _drops_by_stage(manifest).items():
        bars += [(f"dropped ({stage})", r, n) for r, n in reasons.items()]
    if not bars:
        return None
    fig = go.Figure()
    for group in dict.fromkeys(g for g, _, _ in bars):
        rows = sorted(((r, n) for g, r, n in bars if g == group), key=lambda rn: rn[1])
        fig.add_trace(go.Bar(name=group, orientation="h", y=[r for r, _ in rows], x=[n for _, n in rows]))
    return _layout(fig, "Rejected and dropped records by reason", height=max(360, 80 + 20 * len(bars)),
                   barmode="stack", xaxis_title="records", margin={"l": 130, "r": 10, "t": 50, "b": 40},
                   legend={"orientation": "h", "y": -0.2})


def _bin_labels(edges: list[int]) -> list[str]:
    labels = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        labels.append(str(lo) if hi - lo == 1 else f"{lo:,}-{hi - 1:,}")
    return labels


def fig_histograms(hists: dict[str, dict[str, dict[str, list[int]]]], what: str) -> Any:
    """One panel per kind, side by side; bars stacked by source."""
    go = _go()
    from plotly.subplots import make_subplots

    kinds = list(hists)
    fig = make_subplots(rows=1, cols=len(kinds), subplot_titles=[f"{k}" for k in kinds], horizontal_spacing=0.06)
    for col, kind in enumerate(kinds, start=1):
        for source, h in hists[kind].items():
            fig.add_trace(go.Bar(name=f"{source} ({kind})", x=_bin_labels(h["bins"]), y=h["counts"],
                                 legendgroup=kind), row=1, col=col)
        fig.update_xaxes(title_text=what, type="category", tickangle=-45, row=1, col=col)
    fig.update_yaxes(title_text="records", row=1, col=1)
    return _layout(fig, f"{what.capitalize()} per record, by kind and source (power-of-two bins)",
                   height=420, barmode="stack", legend={"orientation": "h", "y": -0.4})


def fig_languages(stats: dict[str, Any]) -> Any:
    go = _go()
    from plotly.subplots import make_subplots

    by_kind = stats.get("lang") or {}
    by_source = stats.get("lang_by_source") or {}
    langs = sorted({lang for d in [*by_kind.values(), *by_source.values()] for lang in d},
                   key=lambda lang: -sum(d.get(lang, 0) for d in by_kind.values()))
    fig = make_subplots(rows=1, cols=2, column_widths=[0.35, 0.65],
                        subplot_titles=["records by language and kind", "records by language and source"])
    color = _colors(langs)
    kinds, sources = list(by_kind), list(by_source)
    for lang in langs:
        fig.add_trace(go.Bar(name=lang, legendgroup=lang, marker_color=color[lang], x=kinds,
                             y=[by_kind[k].get(lang, 0) for k in kinds]), row=1, col=1)
        fig.add_trace(go.Bar(name=lang, legendgroup=lang, marker_color=color[lang], showlegend=False, x=sources,
                             y=[by_source[s].get(lang, 0) for s in sources]), row=1, col=2)
    return _layout(fig, "Language mix of the output", height=380, barmode="stack")


def fig_clusters(sizes: dict[str, int]) -> Any:
    go = _go()
    items = sorted(((int(s), n) for s, n in sizes.items() if int(s) >= 2), key=lambda sn: sn[0])
    fig = go.Figure(go.Bar(x=[str(s) for s, _ in items], y=[n for _, n in items],
                           text=[n for _, n in items], textposition="outside"))
    return _layout(fig, "Near-duplicate clusters by size (records per cluster; one kept per cluster)", height=320,
                   xaxis={"title": "cluster size", "type": "category"}, yaxis={"title": "clusters", "type": "log"})


def budget_tables(budget: dict[str, Any]) -> list[tuple[str, str, dict[str, dict[str, Any]]]]:
    """(title, unit, {source: {target, selected, available}}) for every budget the stage applied.

    Reads ``stages.budget.sources`` (one budget) and ``stages.budget.<name>.sources`` (the token
    budget under ``tokens``, per-kind budgets under the kind's name, each with its ``unit``).
    """
    tables = []
    if isinstance(budget.get("sources"), dict) and budget["sources"]:
        tables.append(("budget", str(budget.get("unit", "tokens")), budget["sources"]))
    for name, sub in budget.items():
        if isinstance(sub, dict) and isinstance(sub.get("sources"), dict) and sub["sources"]:
            unit = str(sub.get("unit", "tokens"))
            tables.append(("token budget" if name == "tokens" else f"{name} budget ({unit})", unit, sub["sources"]))
    return tables


def fig_budget(tables: list[tuple[str, str, dict[str, dict[str, Any]]]]) -> Any:
    go = _go()
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(tables), subplot_titles=[t for t, _, _ in tables])
    color = _colors(["available", "target", "selected (achieved)"])
    for col, (_title, unit, sources) in enumerate(tables, start=1):
        names = list(sources)
        for key, label in (("available", "available"), ("target", "target"), ("selected", "selected (achieved)")):
            if any(sources[n].get(key) is not None for n in names):
                fig.add_trace(go.Bar(name=label, legendgroup=label, showlegend=col == 1, marker_color=color[label],
                                     x=names, y=[sources[n].get(key) for n in names]), row=1, col=col)
        fig.update_yaxes(title_text=unit, row=1, col=col)
    return _layout(fig, "Per source: budget target vs achieved (and what was available)", height=360,
                   barmode="group")


def split_table(manifest: dict[str, Any]) -> dict[str, dict[str, dict[str, int]]]:
    """{split: {source: {"rows": n, "tokens": t?}}} from ``splits`` or ``stages.split.counts``."""
    splits = manifest.get("splits")
    if isinstance(splits, dict) and splits:
        return {name: {src: dict(v) for src, v in (s.get("sources") or {}).items()} for name, s in splits.items()}
    counts = ((manifest.get("stages") or {}).get("split") or {}).get("counts")
    if isinstance(counts, dict) and counts:
        return {name: {src: {"rows": n} for src, n in per.items()} for name, per in counts.items()}
    return {}


def fig_splits(table: dict[str, dict[str, dict[str, int]]]) -> Any:
    go = _go()
    from plotly.subplots import make_subplots

    with_tokens = any(v.get("tokens") is not None for per in table.values() for v in per.values())
    fig = make_subplots(rows=1, cols=2 if with_tokens else 1,
                        subplot_titles=["records per split", "tokens per split"] if with_tokens else ["records per split"])
    splits = list(table)
    sources = sorted({s for per in table.values() for s in per})
    color = _colors(sources)
    for src in sources:
        fig.add_trace(go.Bar(name=src, legendgroup=src, marker_color=color[src], x=splits,
                             y=[table[sp].get(src, {}).get("rows", 0) for sp in splits]), row=1, col=1)
        if with_tokens:
            fig.add_trace(go.Bar(name=src, legendgroup=src, marker_color=color[src], showlegend=False, x=splits,
                                 y=[table[sp].get(src, {}).get("tokens") or 0 for sp in splits]), row=1, col=2)
    return _layout(fig, "Split sizes by source", height=380, barmode="stack")


# --------------------------------------------------------------------------- page
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1f2933;background:#f5f7fa}
header{background:#243b53;color:#fff;padding:18px 32px}header h1{margin:0;font-size:24px}
header p{margin:4px 0 0;color:#bcccdc;font-size:13px}
nav{padding:8px 32px;background:#fff;border-bottom:1px solid #d9e2ec;font-size:14px}
nav a{margin-right:16px;color:#334e68;text-decoration:none}
main{padding:8px 32px 48px;max-width:1320px}
section{background:#fff;border:1px solid #d9e2ec;border-radius:6px;margin:18px 0;padding:6px 20px 14px}
h2{font-size:19px;color:#102a43;border-bottom:1px solid #e4e7eb;padding-bottom:6px}
.not-computed{color:#8d6e00;background:#fffbea;border:1px solid #f0e4b0;padding:10px 14px;border-radius:4px}
table{border-collapse:collapse;font-size:14px;margin:6px 0}td,th{padding:4px 12px;border-bottom:1px solid #e4e7eb;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.ok{color:#1f7a3a;font-weight:600}.bad{color:#b42318;font-weight:600}
.plot{min-height:200px}.row{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:16px;align-items:start}
"""


def _plot(fig: Any, div_id: str) -> str:
    body = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False})
    return f'<div class="plot" data-plot="{div_id}">{body}</div>'


def _not_computed(what: str, why: str) -> str:
    return f'<p class="not-computed">Not computed in this run: {html.escape(what)}. {html.escape(why)}</p>'


def _summary(manifest: dict[str, Any]) -> str:
    c = manifest["counts"]
    rejected, dropped = sum((c.get("rejected") or {}).values()), sum((c.get("dropped") or {}).values())
    balanced = manifest.get("balanced")
    status = ('<span class="ok">balanced</span>' if balanced else '<span class="bad">not checked</span>'
              if balanced is None else '<span class="bad">NOT balanced</span>')
    rows = [("records read (input)", c["input"]), ("output records", c["output"]), ("rejected", rejected),
            ("dropped", dropped)]
    for kind, n in (c.get("output_by_kind") or {}).items():
        rows.append((f"output: {kind}", n))
    cells = "".join(f"<tr><td>{html.escape(k)}</td><td class='n'>{v:,}</td></tr>" for k, v in rows)
    parts = [f"<p>Accounting: {status} &mdash; input {c['input']:,} = output {c['output']:,} + rejected "
             f"{rejected:,} + dropped {dropped:,}</p><div class='row'><div><table>{cells}</table></div>"]
    sources = manifest.get("sources") or {}
    if sources:
        head = "<tr><th>source</th><th>kinds</th><th class='n'>input</th><th class='n'>output</th><th class='n'>rejected</th><th class='n'>dropped</th></tr>"
        body = ""
        for name, s in sources.items():
            sc = s.get("counts") or {}
            body += (f"<tr><td>{html.escape(name)}</td><td>{html.escape(', '.join(s.get('kinds') or {}))}</td>"
                     f"<td class='n'>{sc.get('input', 0):,}</td><td class='n'>{sc.get('output', 0):,}</td>"
                     f"<td class='n'>{sum((sc.get('rejected') or {}).values()):,}</td>"
                     f"<td class='n'>{sum((sc.get('dropped') or {}).values()):,}</td></tr>")
        parts.append(f"<div><table>{head}{body}</table></div>")
    return "".join(parts) + "</div>"


def render_html(manifest: dict[str, Any]) -> str:
    """The whole page as a string (plotly.js inlined)."""
    from plotly.offline import get_plotlyjs

    stats = manifest.get("stats") or {}
    stages = manifest.get("stages") or {}
    body: dict[str, str] = {"summary": _summary(manifest)}

    funnel = _plot(fig_funnel(manifest), "plot-funnel")
    reasons = fig_reasons(manifest)
    body["funnel"] = (f'<div class="row">{funnel}'
                      + (_plot(reasons, "plot-reasons") if reasons is not None
                         else "<p>No record was rejected or dropped.</p>") + "</div>")
    body["lengths"] = (_plot(fig_histograms(stats["length_hist"], "characters"), "plot-lengths")
                       if stats.get("length_hist") else
                       _not_computed("length distribution", "The manifest has no stats.length_hist "
                                     "(written by jobs.report.collect_stats at the write stage)."))
    body["tokens"] = (_plot(fig_histograms(stats["token_hist"], "tokens"), "plot-tokens")
                      if stats.get("token_hist") else
                      _not_computed("token-count distribution", "The manifest has no stats.token_hist (collect_stats "
                                    "over n_tokens, which the filter stage's tokenizer fills)."))
    body["languages"] = (_plot(fig_languages(stats), "plot-languages") if stats.get("lang") or stats.get("lang_by_source")
                         else _not_computed("language mix", "The manifest has no stats.lang (collect_stats over lang, "
                                           "which the filter stage's language identification fills)."))
    dedup = stages.get("dedup") if isinstance(stages.get("dedup"), dict) else {}
    sizes = dedup.get("cluster_sizes") or stats.get("cluster_sizes")
    if sizes and any(int(size) >= 2 for size in sizes):
        body["clusters"] = _plot(fig_clusters(sizes), "plot-clusters")
    elif "dedup" in stages:
        body["clusters"] = "<p>The dedup stage ran and found no near-duplicate cluster.</p>"
    else:
        body["clusters"] = _not_computed("near-duplicate clusters", "The dedup stage did not run.")
    budget = stages.get("budget") if isinstance(stages.get("budget"), dict) else {}
    tables = budget_tables(budget)
    if tables:
        body["budget"] = _plot(fig_budget(tables), "plot-budget")
    elif budget:
        body["budget"] = _not_computed("token budget", "The budget stage ran without a budget (no model_params or tokens set).")
    else:
        body["budget"] = _not_computed("token budget", "The budget stage did not run.")
    table = split_table(manifest)
    body["splits"] = (_plot(fig_splits(table), "plot-splits") if table
                      else _not_computed("split sizes", "The split stage did not run."))
    if manifest.get("timings_s"):
        timings = ", ".join(f"{html.escape(k)} {v:.1f}s" for k, v in manifest["timings_s"].items())
        body["summary"] += f"<p>Timings: {timings}</p>"

    title = "corpusmill run report"
    output = ((manifest.get("config") or {}).get("output") or {}).get("path", "")
    meta = (f"output {html.escape(str(output))} &middot; config sha256 {html.escape(str(manifest.get('config_sha256', ''))[:12])}"
            f" &middot; corpusmill {html.escape(str(manifest.get('corpusmill_version', '')))}")
    nav = "".join(f'<a href="#{sid}">{html.escape(name)}</a>' for sid, name in SECTIONS)
    sections = "".join(f'<section id="{sid}"><h2>{html.escape(name)}</h2>{body[sid]}</section>' for sid, name in SECTIONS)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
            f"<header><h1>{title}</h1><p>{meta}</p></header><nav>{nav}</nav><main>{sections}</main>"
            f"</body></html>\n")


def write_report(manifest: dict[str, Any], out_path: str, storage_options: dict[str, Any] | None = None) -> str:
    """Write ``<out_path>/report.html`` (any fsspec URL); return its path."""
    from jobs.common.io import join, write_text

    target = join(out_path, "report.html")
    write_text(target, render_html(manifest), storage_options)
    return target
