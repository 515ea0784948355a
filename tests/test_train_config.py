"""TrainConfig refuses, by name, every value that would train on silently with a meaningless schedule."""

from __future__ import annotations

import math

import pytest

from vaelib.checks import check_seed
from vaelib.train import TrainConfig


@pytest.mark.parametrize("field,value,message", [
    ("lr", math.inf, "lr must be a positive finite number"),
    ("lr", math.nan, "lr must be a positive finite number"),
    ("lr", 0.0, "lr must be a positive finite number"),
    ("lr", True, "lr must be a positive finite number"),
    ("lr_decay", -0.1, r"lr_decay must be in \(0, 1\]"),
    ("lr_decay", 10.0, r"lr_decay must be in \(0, 1\]"),  # would grow the learning rate
    ("lr_decay_every", -1, "lr_decay_every must be a positive integer"),
    ("lr_decay_every", 0, "lr_decay_every must be a positive integer"),
    ("epochs", 2.5, "epochs must be a positive integer"),
    ("epochs", True, "epochs must be a positive integer"),
    ("batch_size", 0, "batch_size must be a positive integer"),
    ("seed", -1, r"seed must be an integer in \[0, 2\*\*63\)"),
    ("seed", 2**70, r"seed must be an integer in \[0, 2\*\*63\)"),
])
def test_bad_training_settings_are_refused_by_name(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_the_largest_seed_torch_takes_is_accepted():
    assert check_seed(2**63 - 1) == 2**63 - 1
    assert TrainConfig(seed=2**63 - 1).seed == 2**63 - 1
