"""vaelib.checks: one message style for every argument check, and no bool or float passes for an integer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vaelib.checks import (MAX_SEED, check_int, check_one_of, check_positive_int, check_positive_number,
                           check_probability, check_seed)


@pytest.mark.parametrize("call,message", [
    (lambda: check_positive_int(0, "n"), "n must be a positive integer, got 0"),
    (lambda: check_positive_int(True, "n"), "n must be a positive integer, got True"),
    (lambda: check_positive_int(2.0, "n"), "n must be a positive integer, got 2.0"),
    (lambda: check_int(-1, "examples", 0), "examples must be a non-negative integer, got -1"),
    (lambda: check_int(1, "steps", 2), "steps must be an integer >= 2, got 1"),
    (lambda: check_int(5, "k", 1, 4), "k must be an integer between 1 and 4, got 5"),
    (lambda: check_positive_number(math.inf, "lr"), "lr must be a positive finite number, got inf"),
    (lambda: check_positive_number(math.nan, "lr"), "lr must be a positive finite number, got nan"),
    (lambda: check_probability(0.0, "threshold"), r"threshold must be in \(0, 1\], got 0.0"),
    (lambda: check_probability(1.0, "weight", allow_one=False), r"weight must be in \(0, 1\), got 1.0"),
    (lambda: check_one_of("otsu", "binarization", ("dynamic", "static")),
     "unknown binarization 'otsu'; choose one of dynamic, static"),
    (lambda: check_seed(-1), r"seed must be an integer in \[0, 2\*\*63\), got -1"),
    (lambda: check_seed(MAX_SEED, "TrainConfig.seed"), r"TrainConfig.seed must be an integer in \[0, 2\*\*63\)"),
])
def test_a_bad_value_is_named_in_one_line(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_good_values_come_back_as_they_were():
    assert check_positive_int(3, "n") == 3 and check_int(0, "examples", 0) == 0
    assert check_int(np.int64(7), "component", 0, 9) == 7  # NumPy integers are integers
    assert check_positive_number(0.5, "lr") == 0.5 and check_probability(1, "threshold") == 1
    assert check_one_of("static", "binarization", ["dynamic", "static"]) == "static"
    assert check_seed(MAX_SEED - 1) == MAX_SEED - 1
