"""The tuning protocol: grid, selection rule, edge flags, trial plan, tune()."""

import dataclasses
import json
import math
import os

import numpy as np
import pytest

from nsf_optax.experiments.resnet.configs import get_config
from nsf_optax.experiments.runner.errors import ConfigError
from nsf_optax.experiments.tuning import protocol, trials

TINY = get_config("tiny")


def _record(lr, seed, acc, loss=1.0):
    return {"learning_rate": lr, "seed": seed, "val_accuracy": acc, "val_loss": loss}


def test_default_grid_is_five_points_a_factor_sqrt10_apart_centred():
    grid = protocol.default_grid(0.05)
    np.testing.assert_allclose(
        grid, [0.005, 0.05 / math.sqrt(10), 0.05, 0.05 * math.sqrt(10), 0.5]
    )
    assert protocol.Search().grid(TINY) == protocol.default_grid(
        TINY.peak_learning_rate
    )
    assert protocol.Search(lr_grid=(0.3, 0.1)).grid(TINY) == (0.1, 0.3)
    assert protocol.Search(tune_seeds=3).seeds() == (1000, 1001, 1002)
    with pytest.raises(ValueError, match="odd"):
        protocol.default_grid(0.1, points=4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr_grid": ()}, "lr_grid must hold positive"),
        ({"lr_grid": (0.1, -1.0)}, "lr_grid must hold positive"),
        ({"lr_grid": (0.1, 0.1)}, "repeats"),
        ({"tune_seeds": 0}, "tune_seeds"),
        ({"tune_seeds": True}, "tune_seeds"),
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"val_fraction": 0.5}, "val_fraction"),
    ],
)
def test_search_refuses_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        protocol.Search(**kwargs)


def test_selection_highest_mean_accuracy_then_lower_loss_and_edges():
    grid = (0.01, 0.1, 1.0)
    records = [
        _record(0.01, 1000, 0.50),
        _record(0.01, 1001, 0.60),
        _record(0.1, 1000, 0.80),
        _record(0.1, 1001, 0.60),
        _record(1.0, 1000, 0.70),
        _record(1.0, 1001, 0.60),
    ]
    tuned = protocol.select(grid, records)
    assert tuned.chosen == {"learning_rate": 0.1}
    assert tuned.edge is None and tuned.val_target == pytest.approx(0.70)
    assert tuned.grid == grid and tuned.trials == records
    # A tie in mean accuracy goes to the lower mean loss: here the high edge.
    tied = [
        _record(0.01, 0, 0.5, 2.0),
        _record(0.1, 0, 0.7, 1.5),
        _record(1.0, 0, 0.7, 1.2),
    ]
    high = protocol.select(grid, tied)
    assert high.chosen == {"learning_rate": 1.0} and high.edge == "high"
    low = protocol.select(grid, [_record(lr, 0, 0.9 - lr / 10) for lr in grid])
    assert low.chosen == {"learning_rate": 0.01} and low.edge == "low"
    assert low.val_target == pytest.approx(0.899)
    # A full tie (accuracy and loss) goes to the lower learning rate.
    even = protocol.select(grid, [_record(lr, 0, 0.5) for lr in grid])
    assert even.chosen == {"learning_rate": 0.01} and even.edge == "low"
    single = protocol.select((0.1,), [_record(0.1, 0, 0.5)])
    assert single.edge is None
    assert json.loads(json.dumps(tuned.to_json())) == {
        "chosen": {"learning_rate": 0.1},
        "trials": records,
        "grid": [0.01, 0.1, 1.0],
        "edge": None,
        "val_target": pytest.approx(0.70),
        "extended": 0,
    }


def test_plan_same_trial_count_per_key_tuning_seeds_and_held_out_data():
    bases = {
        "sgd": dataclasses.replace(TINY, optimizer="sgd"),
        "adam": dataclasses.replace(TINY, optimizer="adam"),
    }
    search = protocol.Search(tune_seeds=2, val_fraction=0.2)
    planned = protocol.plan(bases, search)
    assert [sum(k == key for k, *_ in planned) for key in bases] == [10, 10]
    final_seeds = set(range(5))
    for key, lr, seed, config in planned:
        assert config.seed == seed and seed in (1000, 1001)
        assert seed not in final_seeds
        assert config.val_fraction == 0.2 and config.learning_rate == lr
        assert config.optimizer == bases[key].optimizer
    sgd_lrs = sorted({lr for k, lr, *_ in planned if k == "sgd"})
    assert sgd_lrs == pytest.approx(
        protocol.default_grid(bases["sgd"].peak_learning_rate)
    )
    # A held-out part with no example is refused up front.
    small = {key: dataclasses.replace(c, train_size=60) for key, c in bases.items()}
    with pytest.raises(ConfigError, match="holds out 0 of the 60"):
        protocol.plan(small, protocol.Search(val_fraction=0.005))


def test_apply_sets_the_choice_and_trains_on_the_full_training_set():
    tuned = protocol.select((0.01, 0.1), [_record(0.01, 0, 0.4), _record(0.1, 0, 0.6)])
    trial = protocol.trial_config(TINY, protocol.Search(), 0.01, 1000)
    final = protocol.apply(dataclasses.replace(trial, seed=3), tuned)
    assert final.learning_rate == 0.1 and final.val_fraction == 0.0
    assert final.seed == 3


def test_markdown_trials_marks_the_choice_and_the_edge():
    grid = (0.01, 0.1)
    table = protocol.markdown_trials(
        {
            "sgd": protocol.select(grid, [_record(0.01, 0, 0.4), _record(0.1, 0, 0.6)]),
            "adam": protocol.select(
                (0.001, 0.01), [_record(0.001, 0, 0.5), _record(0.01, 0, 0.25)]
            ),
        }
    )
    assert table.splitlines() == [
        "| grid index | sgd (edge: high) | adam (edge: low) |",
        "|---|---|---|",
        "| 0 | 0.01: 40.00 | **0.001: 50.00** |",
        "| 1 | **0.1: 60.00** | 0.01: 25.00 |",
    ]


def test_tune_hands_every_key_to_one_run_trials_call(monkeypatch, tmp_path, capsys):
    calls = []

    def fake_run_trials(configs, workdir, *, resume=False):
        calls.append((list(configs), workdir, resume))
        # Accuracy peaks at lr 0.1 for every key; the loss breaks no tie.
        return [
            [
                {"step": 1, "test_accuracy": 0.1, "test_loss": 3.0},
                {
                    "step": 2,
                    "test_accuracy": 1 - abs(math.log10(c.learning_rate) + 1) / 4,
                    "test_loss": 1.0 + c.seed - 1000,
                },
            ]
            for c in configs
        ]

    monkeypatch.setattr(trials, "run_trials", fake_run_trials)
    bases = {"sgd": TINY, "p=0.5": dataclasses.replace(TINY, p_value=0.5)}
    search = protocol.Search(lr_grid=(0.01, 0.1, 1.0), tune_seeds=2)
    tuned = protocol.tune(bases, search, tmp_path / "tuning")
    assert len(calls) == 1 and len(calls[0][0]) == 12
    assert all(c.val_fraction == 0.1 for c in calls[0][0])
    assert {k: t.chosen for k, t in tuned.items()} == {
        "sgd": {"learning_rate": 0.1},
        "p=0.5": {"learning_rate": 0.1},
    }
    assert tuned["sgd"].val_target == 1.0 and tuned["sgd"].edge is None
    assert [t["val_loss"] for t in tuned["sgd"].trials[:2]] == [1.0, 2.0]
    # Every trial keeps its validation curve; the chosen rate's, by seed.
    assert tuned["sgd"].trials[0]["val_curve"] == [[1.0, 0.1], [2.0, 0.75]]
    steps, curves = tuned["sgd"].val_curves()
    assert steps.tolist() == [1.0, 2.0] and curves.tolist() == [[0.1, 1.0]] * 2
    no_curves = dataclasses.replace(
        tuned["sgd"],
        trials=[
            {k: v for k, v in t.items() if k != "val_curve"}
            for t in tuned["sgd"].trials
        ],
    )
    with pytest.raises(ValueError, match="No validation curves"):
        no_curves.val_curves()
    plan = json.loads((tmp_path / "tuning" / "plan.json").read_text())
    assert plan[6] == {"trial": 6, "key": "p=0.5", "learning_rate": 0.01, "seed": 1000}
    # A resume must plan the same trials.
    with pytest.raises(ConfigError, match="planned other trials"):
        protocol.tune(
            bases, protocol.Search(lr_grid=(0.1,)), tmp_path / "tuning", resume=True
        )
    assert capsys.readouterr().out == ""


def test_tune_end_to_end_on_the_tiny_preset(tmp_path):
    bases = {"sgd": dataclasses.replace(TINY, optimizer="sgd"), "nsf": TINY}
    search = protocol.Search(lr_grid=(0.01, 0.1), tune_seeds=1, lr_extend=0)
    tuned = protocol.tune(bases, search, tmp_path)
    for result in tuned.values():
        assert len(result.trials) == 2 and result.edge in ("low", "high")
        accs = np.asarray([t["val_accuracy"] for t in result.trials])
        # Scored on the 144 held-out digits (10 % of 1437), not the 360 test ones.
        np.testing.assert_allclose(accs * 144, np.round(accs * 144), atol=1e-3)
        assert result.val_target == max(accs)
    # Each key's two trials train as one population (group<first trial>).
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "group0",
        "group2",
        "plan.json",
        "trial0",
        "trial1",
        "trial2",
        "trial3",
    ]
    again = protocol.tune(bases, search, tmp_path, resume=True)
    assert {k: t.to_json() for k, t in again.items()} == {
        k: t.to_json() for k, t in tuned.items()
    }


def test_a_choice_at_the_edge_extends_that_keys_grid_until_it_is_inside(
    tmp_path, monkeypatch
):
    """Extension rounds train only the keys at an edge, one rate beyond it at the
    grid's spacing, each in its own directory; a key whose optimum lies two
    points out gets both, one at the edge again after ``lr_extend`` runs out is
    flagged. The accuracy is a made-up function of the rate (no training)."""
    best = {"a": 10.0, "b": 1e-3, "c": 0.1}

    def fake_run_trials(configs, workdir, *, resume=False):
        rounds.append((os.path.basename(workdir), len(configs)))
        key = {c.optimizer: k for k, c in bases.items()}
        return [
            [
                {
                    "step": c.num_steps,
                    "test_accuracy": -abs(
                        math.log10(c.learning_rate / best[key[c.optimizer]])
                    ),
                    "test_loss": 1.0,
                }
            ]
            for c in configs
        ]

    rounds: list[tuple[str, int]] = []
    monkeypatch.setattr(trials, "run_trials", fake_run_trials)
    bases = {
        "a": dataclasses.replace(TINY, optimizer="sgd"),
        "b": dataclasses.replace(TINY, optimizer="adam"),
        "c": dataclasses.replace(TINY, optimizer="lion"),
    }
    search = protocol.Search(lr_grid=(0.01, 0.1, 1.0), tune_seeds=1, lr_extend=2)
    tuned = protocol.tune(bases, search, tmp_path / "tuning")
    # a: 10 and then 100 added (10 is the best, no longer an edge after 100);
    # b: 1e-3 added, then 1e-4 (1e-3 stays best); c: the grid alone.
    assert rounds == [("tuning", 9), ("extend1", 2), ("extend2", 2)]
    assert tuned["a"].chosen == {"learning_rate": pytest.approx(10.0)}
    assert tuned["a"].grid == pytest.approx((0.01, 0.1, 1.0, 10.0, 100.0))
    assert (tuned["a"].extended, tuned["a"].edge) == (2, None)
    assert tuned["b"].chosen == {"learning_rate": pytest.approx(1e-3)}
    assert (tuned["b"].extended, tuned["b"].edge) == (2, None)
    assert (tuned["c"].extended, tuned["c"].edge, len(tuned["c"].trials)) == (
        0,
        None,
        3,
    )
    short = protocol.tune(
        bases, dataclasses.replace(search, lr_extend=1), tmp_path / "short"
    )
    assert short["a"].edge == "high" and short["a"].extended == 1
    assert protocol.beyond_edge((0.5,), "high") == pytest.approx(0.5 * math.sqrt(10))
    with pytest.raises(ConfigError, match="lr_extend must be a non-negative integer"):
        protocol.Search(lr_extend=-1)
