import pytest

from jobs.common.accounting import AccountingError, build_counts, check_balance


def test_counts_by_hand_and_balance():
    units = [{"source": "a", "raw_records": 10, "units": 12}, {"source": "b", "raw_records": 5, "units": 5}]
    written = [
        {"source": "a", "outcome": "output", "kind": "sft", "reason": None, "n": 11},
        {"source": "a", "outcome": "rejected", "kind": None, "reason": "empty_turn", "n": 1},
        {"source": "b", "outcome": "output", "kind": "cpt", "reason": None, "n": 3},
        {"source": "b", "outcome": "dropped", "kind": None, "reason": "too_short", "n": 2},
    ]
    counts = build_counts(units, written)
    assert counts["a"] == {"raw_records": 10, "expanded": 2, "repeated": 0, "input": 12, "output": 11,
                           "rejected": {"empty_turn": 1}, "dropped": {}, "output_by_kind": {"sft": 11}}
    assert counts["__all__"]["input"] == 17 and counts["__all__"]["output_by_kind"] == {"cpt": 3, "sft": 11}
    check_balance(counts)


def test_a_lost_record_fails_loudly():
    units = [{"source": "a", "raw_records": 3, "units": 3}]
    written = [{"source": "a", "outcome": "output", "kind": "cpt", "reason": None, "n": 2}]
    with pytest.raises(AccountingError, match=r"a: input 3 != output 2 \+ rejected 0 \+ dropped 0"):
        check_balance(build_counts(units, written))


def test_budget_copies_count_as_repeated_not_as_records_read():
    units = [{"source": "a", "raw_records": 4, "units": 7, "repeated": 3}]
    written = [{"source": "a", "outcome": "output", "kind": "cpt", "reason": None, "n": 7}]
    counts = build_counts(units, written)
    assert (counts["a"]["raw_records"], counts["a"]["expanded"], counts["a"]["repeated"]) == (4, 0, 3)
    check_balance(counts)
