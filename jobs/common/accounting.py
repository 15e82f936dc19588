"""Nothing is lost: per-source counts and the balance check ``input == output + rejected + dropped``.

``input`` counts units: every raw record read, plus the extra units that expansion created (an
instance list of 3 is 1 raw record and 3 units; a ranked list of 4 responses is 3 pairs), plus the
extra copies the budget stage wrote for a repeated source (``repeated``). The
other side is counted from what was actually written, so a record lost between normalize and the
files on disk shows up as an imbalance and fails the run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any


class AccountingError(RuntimeError):
    """Written records do not add up to the records read."""


def empty_counts() -> dict[str, Any]:
    return {"raw_records": 0, "expanded": 0, "repeated": 0, "input": 0, "output": 0, "rejected": {}, "dropped": {},
            "output_by_kind": {}}


def build_counts(units: Iterable[dict[str, Any]], written: Iterable[dict[str, Any]]
                 ) -> dict[str, dict[str, Any]]:
    """Counts per source (and ``__all__``).

    ``units``: rows ``{source, raw_records, units, repeated?}`` from the final unit frame.
    ``written``: rows ``{source, outcome: output|rejected|dropped, kind, reason, n}`` read back
    from the written files.
    """
    per: dict[str, dict[str, Any]] = defaultdict(empty_counts)
    for row in units:
        for key in (row["source"], "__all__"):
            c = per[key]
            repeated = row.get("repeated", 0)
            c["raw_records"] += row["raw_records"]
            c["repeated"] += repeated
            c["expanded"] += row["units"] - row["raw_records"] - repeated
            c["input"] += row["units"]
    for row in written:
        for key in (row["source"], "__all__"):
            c = per[key]
            if row["outcome"] == "output":
                c["output"] += row["n"]
                c["output_by_kind"][row["kind"]] = c["output_by_kind"].get(row["kind"], 0) + row["n"]
            else:
                bucket = c[row["outcome"]]
                bucket[row["reason"]] = bucket.get(row["reason"], 0) + row["n"]
    for c in per.values():
        c["rejected"] = dict(sorted(c["rejected"].items()))
        c["dropped"] = dict(sorted(c["dropped"].items()))
        c["output_by_kind"] = dict(sorted(c["output_by_kind"].items()))
    return dict(sorted(per.items()))


def check_balance(counts: dict[str, dict[str, Any]]) -> None:
    """Raise ``AccountingError`` naming every source whose counts do not add up."""
    problems = []
    for source, c in counts.items():
        out = c["output"] + sum(c["rejected"].values()) + sum(c["dropped"].values())
        if c["input"] != out:
            problems.append(f"{source}: input {c['input']} != output {c['output']} + rejected "
                            f"{sum(c['rejected'].values())} + dropped {sum(c['dropped'].values())}")
    if problems:
        raise AccountingError("records were lost or duplicated between reading and writing: "
                              + "; ".join(problems))
