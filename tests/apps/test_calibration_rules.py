"""The calibration system's rules and expected counts, checked by hand-counted cases."""

from __future__ import annotations

from apps.calibration.expected import Expected, for_accepted
from apps.calibration.rules import Fate, fate, ordinal


def test_ordinal_is_the_ids_number_plus_one_for_measured_ids_only() -> None:
    assert ordinal("m0000000") == 1
    assert ordinal("m0000006") == 7
    assert ordinal("w0000006") is None, "warm-up ids are never faulted"
    assert ordinal("bad0000006") is None and ordinal("m") is None and ordinal("mx7") is None


def test_fates_and_their_precedence() -> None:
    by_k = {k: fate(f"m{k - 1:07d}") for k in (1, 7, 11, 13, 77, 91, 143, 1001, 14, 22, 26)}
    assert by_k == {
        1: Fate.ONCE, 7: Fate.DROPPED, 11: Fate.TWICE, 13: Fate.FAILED,
        77: Fate.DROPPED, 91: Fate.DROPPED, 1001: Fate.DROPPED,  # drop beats twice and fail
        143: Fate.FAILED,  # fail beats twice
        14: Fate.DROPPED, 22: Fate.TWICE, 26: Fate.FAILED,
    }
    assert all(fate(f"w{i:07d}") is Fate.ONCE for i in range(100))


def test_expected_counts_of_the_first_143_tasks() -> None:
    # k = 1..143: multiples of 7: 20 dropped; of 13 not of 7: 13,26,39,52,65,78,104,117,130,143 = 10 failed;
    # of 11, not of 7 or 13: 11,22,33,44,55,66,88,99,110,121,132 = 11 twice; 143 - 41 = 102 once.
    want = for_accepted([f"m{i:07d}" for i in range(143)], retries=3)
    assert want == Expected(accepted=143, completed=113, lost=30, failed=10, silent_loss=20, duplicated=11,
                            retried=21, effects=102 + 22, attempts=102 + 22 + 40)
    assert for_accepted([f"m{i:07d}" for i in range(143)], retries=0).retried == 11, "one attempt: no retry"


def test_mismatches_name_every_wrong_count() -> None:
    want = Expected(accepted=3, completed=2, lost=1)
    run = {**{k: 0 for k in Expected.__dataclass_fields__}, "accepted": 3, "completed": 2, "lost": 1}
    assert want.mismatches(run) == []
    assert want.mismatches({**run, "lost": 0}) == ["lost: reported 0, expected 1"]
