"""``corpusmill``: run the pipeline, check a config, look at normalized records."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

from jobs.common.config import ConfigError, SourceConfig, load
from jobs.pipeline import STAGES

EPILOG = """examples:
  corpusmill run conf/local.yaml
  corpusmill run conf/local.yaml --set output.path=/tmp/out --set spark.master=local[2]
  corpusmill validate conf/local.yaml
  corpusmill inspect data/alpaca.json --limit 3
  corpusmill inspect 'data/*.jsonl.gz' --kind preference --json"""


def _sample_units(src: SourceConfig, limit: int) -> Iterator[dict[str, Any]]:
    """Normalized units of a source's first records, read on this machine (no Spark)."""
    from jobs.common.io import list_files, read_options
    from jobs.normalize import source_spec
    from udfs.normalize import normalize_raw
    from udfs.readers import iter_file

    spec = source_spec(src)
    seen = 0
    for path, _size in list_files(src):
        for row in iter_file(path, src.format, read_options(src)):
            row.update(source=src.name, source_file=path)
            yield from normalize_raw(row, spec)
            seen += 1
            if seen >= limit:
                return


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _counter_text(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))) or "-"


def cmd_run(args: argparse.Namespace) -> int:
    from jobs.pipeline import run
    from jobs.progress import Progress

    cfg = load(args.config, args.overrides)
    manifest = run(cfg, args.stage, progress=Progress.for_run(quiet=args.quiet, master=cfg.spark.master))
    if manifest is None:
        return 0
    rows = []
    for name, rep in manifest["sources"].items():
        c = rep["counts"]
        rows.append([name, _counter_text(rep["formats"]), _counter_text(rep["shapes"]), c["input"],
                     _counter_text(c["output_by_kind"]), sum(c["rejected"].values()),
                     _counter_text(c["rejected"])])
    total = manifest["counts"]
    rows.append(["TOTAL", "", "", total["input"], _counter_text(total["output_by_kind"]),
                 sum(total["rejected"].values()), ""])
    print()
    print(_table(rows, ["source", "format", "shape", "input", "output", "rejected", "reject reasons"]))
    print(f"\nbalanced: input {total['input']} = output {total['output']} + rejected "
          f"{sum(total['rejected'].values())} + dropped {sum(total['dropped'].values())}")
    print(f"output: {cfg.output.path}  (manifest.json, {', '.join(manifest['outputs'])})")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from jobs.common.io import list_files

    cfg = load(args.config, args.overrides)
    print(f"config OK: {len(cfg.sources)} sources, output -> {cfg.output.path}")
    rows = []
    for src in cfg.sources:
        files = list_files(src)
        units = list(_sample_units(src, args.sample))
        formats = Counter(u["source_format"] for u in units)
        shapes = Counter(u["shape"] for u in units if u["shape"])
        kinds = Counter(u["kind"] for u in units if u["kind"])
        rejects = Counter(u["reject_reason"] for u in units if u["reject_reason"])
        rows.append([src.name, len(files), _counter_text(dict(formats)), _counter_text(dict(shapes)),
                     _counter_text(dict(kinds)), _counter_text(dict(rejects))])
    print(_table(rows, ["source", "files", "format", "shape", "kind",
                        f"rejects (first {args.sample} records)"]))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from udfs.schema import columns_for

    src = SourceConfig(name=args.name, path=args.path, format=args.format, kind=args.kind,
                       shape=args.shape, text_field=args.text_field)
    from jobs.common.config import Config, validate

    validate(Config(sources=[src]))
    shown = 0
    for unit in _sample_units(src, args.limit):
        if unit["reject_reason"] and not args.rejects:
            if not args.json:
                print(f"# rejected ({unit['reject_reason']}): {unit['reject_detail']}  "
                      f"[{unit['source_file']}@{unit['source_offset']}]", file=sys.stderr)
            continue
        if unit["reject_reason"]:
            view = {k: unit[k] for k in ("reject_reason", "reject_detail", "source_file", "source_offset", "raw")}
        else:
            view = {k: unit[k] for k in ["content_hash"] + columns_for(unit["kind"]) if unit.get(k) is not None}
            view["messages"] = view.get("messages")
            view = {k: v for k, v in view.items() if v is not None}
            for key in ("messages", "prompt", "chosen", "rejected", "completion"):
                if key in view:
                    view[key] = [{k: v for k, v in m.items() if v is not None} for m in view[key]]
        print(json.dumps(view, ensure_ascii=False) if args.json
              else json.dumps(view, ensure_ascii=False, indent=2))
        shown += 1
    if not args.json:
        print(f"# {shown} record(s) shown", file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from jobs.verify import verify

    result = verify(args.output, workers=args.jobs)
    for problem in result.problems:
        print(f"MISMATCH {problem}", file=sys.stderr)
    status = "OK" if result.ok else f"FAILED ({len(result.problems)} problem(s))"
    print(f"{status}: {result.files} files, {result.rows} rows, {result.bytes} bytes checked against "
          f"{args.output.rstrip('/')}/manifest.json")
    return 0 if result.ok else 1


def cmd_samples(args: argparse.Namespace) -> int:
    from jobs.samples import write_samples

    for path in write_samples(args.directory):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corpusmill", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Prepare LLM training data on Spark: ingest any published shape, normalize to "
                    "unified cpt/sft/preference records, account for every input record.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the pipeline (local mode unless spark.master says otherwise)")
    p.add_argument("config", help="YAML config, e.g. conf/local.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set output.path=/tmp/out (repeatable)")
    p.add_argument("--stage", choices=STAGES,
                   help="run one stage on the previous stage's output in <output>/_work")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check a config; show each source's files and detected format/shape/kind")
    p.add_argument("config")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--sample", type=int, default=200, help="records read per source (default 200)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("inspect", help="print normalized records of any file, directory or glob (no config)")
    p.add_argument("path")
    p.add_argument("--format", default="auto", help="auto|jsonl|json|parquet|csv|tsv|txt (default auto)")
    p.add_argument("--kind", default="auto", help="auto|cpt|sft|preference (default auto)")
    p.add_argument("--shape", default="auto", help="pin a shape (alpaca, sharegpt, chosen_rejected, ...)")
    p.add_argument("--text-field", default=None, help="cpt: key holding the text")
    p.add_argument("--name", default="inspect", help="source name used in ids (default inspect)")
    p.add_argument("--limit", type=int, default=5, help="raw records to read (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--rejects", action="store_true", help="print rejected records too")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("verify", help="re-check every shard's rows, bytes and sha256 against manifest.json "
                                      "(exit 1 naming each mismatch)")
    p.add_argument("output", help="the run's output.path: local path or URL (s3://...; AWS env for credentials)")
    p.add_argument("--jobs", type=int, default=8, help="files checked in parallel (default 8)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("samples", help="write the embedded sample data set (every supported shape) to a directory")
    p.add_argument("directory")
    p.set_defaults(func=cmd_samples)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"corpusmill: config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
