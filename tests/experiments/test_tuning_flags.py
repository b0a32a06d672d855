"""The shared tuning flags: parsed into the protocol's Search, refused without
--tune."""

import argparse

import pytest

from nsf_optax.experiments.runner.errors import ConfigError
from nsf_optax.experiments.tuning import flags
from nsf_optax.experiments.tuning.protocol import Search


def _parse(argv):
    parser = argparse.ArgumentParser()
    flags.add_flags(parser, per="method")
    return parser.parse_args(argv)


def test_no_tune_is_no_search():
    assert flags.search(_parse([])) is None


def test_defaults_and_given_values_make_the_search():
    assert flags.search(_parse(["--tune"])) == Search()
    args = _parse(
        [
            "--tune",
            "--lr_grid",
            "1",
            "0.1",
            "--tune_seeds",
            "3",
            "--val_fraction",
            "0.2",
            "--lr_extend",
            "0",
        ]
    )
    assert flags.search(args) == Search(
        lr_grid=(0.1, 1.0), tune_seeds=3, val_fraction=0.2, lr_extend=0
    )
    assert args.tune_val_fraction == 0.2 and "val_fraction" not in vars(args)


@pytest.mark.parametrize(
    "argv", [["--lr_grid", "0.1"], ["--val_fraction", "0.1"], ["--lr_extend", "1"]]
)
def test_search_flags_need_tune(argv):
    name = argv[0].removeprefix("--")
    with pytest.raises(ConfigError, match=f"{name} needs --tune"):
        flags.search(_parse(argv))
