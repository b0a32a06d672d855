"""The p-sweep: a population equals its single runs, shards, resumes exactly, and
writes its results; the landscape statistics; the command line."""

import csv
import dataclasses
import json
import pathlib

import jax
import numpy as np
import pytest
from flax import nnx

from nsf_optax.experiments.landscape import stats as landscape
from nsf_optax.experiments.landscape import sweep
from nsf_optax.experiments.resnet import population, train
from nsf_optax.experiments.resnet.configs import get_config
from nsf_optax.experiments.runner import checkpointing, workdirs
from nsf_optax.experiments.runner.errors import (
    CheckpointError,
    ConfigError,
    WorkdirLockedError,
)
from nsf_optax.spectral import detectable_difference

from ._runs import start_on_host_devices

NSF = dataclasses.replace(get_config("tiny"), optimizer="nsf", p_schedule="constant")
SWEEP = dict(ps=(-0.25, 0.0, 0.5), seeds=2, label_noise=(0.0, 0.25))


def _state_leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One uninterrupted tiny sweep: (workdir, rows)."""
    workdir = tmp_path_factory.mktemp("sweep") / "run"
    return workdir, sweep.run_sweep(NSF, workdir, **SWEEP)


@pytest.mark.parametrize(
    ("flavour", "normalize", "atol"),
    [
        ("sgd", "rms", 1e-6),
        # Another population and two single runs: 48 s on a loaded 2-core machine.
        pytest.param("adam", "none", 1e-5, marks=pytest.mark.slow),
    ],
    ids=["sgd", "adam"],
)
def test_run_taken_out_of_the_population_equals_the_single_run(
    flavour, normalize, atol, tmp_path
):
    """Every model array after 6 steps to float32 tolerance: rtol 1e-5 and atol
    1e-6 (SGD flavour; measured at most 1.2e-7 apart) or 1e-5 (raw Adam flavour,
    whose p = 1/2 at lr 0.1 is Adam at lr 0.1: measured 1e-6 here, 6e-6 for
    seed 1). Not the traced p: a single run with p injected into its state is bit
    for bit the single run with a constant p. The population's step is compiled
    inside a loop over runs, where XLA fuses and orders the float32 arithmetic
    differently, and training amplifies those roundings."""
    config = dataclasses.replace(NSF, nsf_flavour=flavour, normalize=normalize)
    result = population.train_population(config, (-0.25, 0.5), (0, 1), tmp_path / "pop")
    assert result.runs == ((-0.25, 0), (0.5, 0), (-0.25, 1), (0.5, 1))
    for index in (1, 2):  # (0.5, seed 0) and (-0.25, seed 1)
        p, seed = result.runs[index]
        single = train.train_and_evaluate(
            dataclasses.replace(config, p_value=p, seed=seed), tmp_path / f"{index}"
        )
        got = _state_leaves(nnx.state(result.model(index)))
        want = _state_leaves(nnx.state(single.model))
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=atol)
        assert len(result.histories[index]) == len(single.history)
        for a, b in zip(result.histories[index], single.history, strict=True):
            assert a["step"] == b["step"] and a["p"] == b["p"] == p
            for key in ("train_loss", "test_loss", "test_accuracy"):
                np.testing.assert_allclose(a[key], b[key], rtol=1e-5)


def test_runs_of_one_seed_share_parameters_and_differ_in_p():
    data = train.load_training_set(NSF)
    pop = population.Population(NSF, (-0.5, 0.0, 0.75), (3, 7), data, 1)
    assert pop.runs == [(-0.5, 3), (0.0, 3), (0.75, 3), (-0.5, 7), (0.0, 7), (0.75, 7)]
    p = np.asarray(pop.state[1]["opt_state"]["hyperparams"]["p"][...])
    np.testing.assert_array_equal(p, [-0.5, 0.0, 0.75] * 2)
    kernel = np.asarray(pop.state[0]["head"]["kernel"][...])
    assert kernel.shape[0] == 6
    for run in range(6):
        same = 3 * (run // 3)
        np.testing.assert_array_equal(kernel[run], kernel[same])
    assert not np.array_equal(kernel[0], kernel[3])
    np.testing.assert_array_equal(pop.seed_index, [0, 0, 0, 1, 1, 1])
    assert (pop.rng[0] == pop.rng[2]).all() and (pop.rng[0] != pop.rng[3]).any()


def test_on_one_cpu_device_the_runs_keep_their_own_state():
    """The CPU default on one device: each run its own pytree after place(), and
    items() stacks them back into the checkpoint format (a leading run axis)."""
    data = train.load_training_set(NSF)
    pop = population.Population(NSF, (-0.5, 0.75), (3, 7), data, 1)
    before = jax.tree.map(np.copy, pop.state)
    pop.place()
    assert pop.separate is not None and pop.state is None
    assert len(pop.separate.states) == 4
    kernel = pop.separate.states[3][0]["head"]["kernel"][...]
    assert kernel.shape == before[0]["head"]["kernel"][...].shape[1:]
    items = pop.items()
    for i, name in enumerate(("model", "optimizer", "train_metrics")):
        got, want = jax.tree.leaves(items[name]), jax.tree.leaves(before[i])
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(items["rng"]["key"], pop.rng)
    p = items["optimizer"]["opt_state"]["hyperparams"]["p"][...]
    np.testing.assert_array_equal(p, [-0.5, 0.75] * 2)


def test_noise_levels_share_one_compiled_step():
    """Populations that differ in data, seeds or p reuse the compiled programs."""
    pops = []
    for noise, ps, seeds in ((0.0, (0.0, 0.5), (0, 1)), (0.25, (-0.5, 1.0), (2, 3))):
        config = dataclasses.replace(NSF, label_noise=noise, train_size=500)
        data = train.load_training_set(config)
        pops.append(population.Population(config, ps, seeds, data, 1))
    assert pops[0]._step is pops[1]._step and pops[0]._eval is pops[1]._eval
    other = dataclasses.replace(NSF, normalize="none")
    data = train.load_training_set(other)
    assert population.Population(other, (0.0,), (0,), data, 1)._step is not (
        pops[0]._step
    )


@pytest.mark.slow  # two processes that import jax and compile: 90 s, loaded 2 cores
def test_sharded_population_equals_single_device(tmp_path):
    """3 devices: 4 runs padded to 6, 2 per device; same numbers to 1e-6."""
    outs = {n: tmp_path / f"pop{n}.npz" for n in (1, 3)}
    procs = {
        n: start_on_host_devices("tests.experiments._sharded_sweep", n, out)
        for n, out in outs.items()
    }
    for proc in procs.values():
        log, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, log
    single, sharded = (np.load(outs[n]) for n in (1, 3))
    assert int(single["devices"]) == 1 and int(sharded["devices"]) == 3
    np.testing.assert_array_equal(single["runs"], sharded["runs"])
    arrays = sorted(k for k in single.files if k.startswith("arr_"))
    assert arrays and arrays == sorted(k for k in sharded.files if k.startswith("arr_"))
    for key in arrays:
        assert sharded[key].shape[0] == 4  # the padding is dropped
        np.testing.assert_allclose(sharded[key], single[key], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(sharded["test_loss"], single["test_loss"], rtol=1e-6)


def test_outputs(finished):
    workdir, rows = finished
    assert len(rows) == 3 * 2 * 2
    with open(workdir / "results.json") as f:
        assert json.load(f) == rows
    for row in rows:
        assert set(sweep.RESULT_FIELDS) <= set(row)
        assert 0.0 <= row["final_test_accuracy"] <= 1.0
        assert row["final_test_loss"] is None or row["final_test_loss"] > 0
    assert {(r["p"], r["seed"], r["label_noise"]) for r in rows} == {
        (p, s, f) for p in SWEEP["ps"] for s in range(2) for f in SWEEP["label_noise"]
    }
    with open(workdir / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) and set(table[0]) == set(sweep.RESULT_FIELDS)
    md = (workdir / "results.md").read_text()
    assert md.count("### label noise") == 2
    assert "**best**" in md and "| SGD" in md and "Adam's p" in md
    assert "NOT EVIDENCE (a smoke test): the custom preset" not in md
    assert "NOT EVIDENCE (a smoke test): 2 final seeds (fewer than 5); learning " in md
    with open(workdir / "sweep.json") as f:
        settings = json.load(f)
    with open(workdir / "verdicts.json") as f:
        record = json.load(f)
    assert record["evidence"] is False and len(record["verdicts"]) == 2
    assert record["trend"]["label_noise"] == [0.0, 0.25]
    assert "Does the best p move up with label noise?" in md
    assert settings["evidence"] is False
    assert settings["not_evidence_because"] == [
        "2 final seeds (fewer than 5)",
        "learning rates not tuned",
    ]
    assert (workdir / "landscape.png").read_bytes()[:4] == b"\x89PNG"
    for noise in SWEEP["label_noise"]:
        level = pathlib.Path(sweep.level_dir(workdir, noise))
        with open(level / "population.json") as f:
            assert json.load(f)["label_noise"] == noise
        assert not (level / ".lock").exists()
    assert not (workdir / ".lock").exists()


def test_p_zero_is_sgd_whatever_the_normalization(finished):
    """At p = 0 the gain is exactly 1, so rms-normalized runs are plain SGD runs."""
    workdir, rows = finished
    raw = sweep.run_sweep(
        dataclasses.replace(NSF, normalize="none"),
        workdir.parent / "raw",
        ps=(0.0,),
        seeds=2,
        label_noise=(0.0,),
    )
    at_zero = [r for r in rows if r["p"] == 0.0 and r["label_noise"] == 0.0]
    assert raw == at_zero


def test_interrupted_sweep_resumes_exactly(finished, tmp_path):
    workdir, rows = finished
    partial = tmp_path / "run"
    assert sweep.run_sweep(NSF, partial, max_steps_this_run=4, **SWEEP) == []
    assert not (partial / "results.json").exists()
    with pytest.raises(CheckpointError, match="pass --resume"):
        sweep.run_sweep(NSF, partial, **SWEEP)
    assert sweep.run_sweep(NSF, partial, resume=True, **SWEEP) == rows
    for noise in SWEEP["label_noise"]:
        a, b = (
            checkpointing.Checkpoints(
                train.checkpoint_dir(sweep.level_dir(w, noise))
            ).find_resume()
            for w in (workdir, partial)
        )
        assert a.step == b.step == NSF.num_steps
        for name in a.items:
            for key in a.items[name]:
                np.testing.assert_array_equal(a.items[name][key], b.items[name][key])


def test_refusals_write_nothing(finished, tmp_path):
    workdir, _ = finished
    before = sorted(str(p) for p in workdir.rglob("*"))
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        sweep.run_sweep(NSF, workdir, **SWEEP)
    with workdirs.Lock(tmp_path / "busy"), pytest.raises(WorkdirLockedError):
        sweep.run_sweep(NSF, tmp_path / "busy", **SWEEP)
    with pytest.raises(CheckpointError, match="different config"):
        sweep.run_sweep(NSF, workdir, resume=True, **{**SWEEP, "ps": (0.0, 0.5)})
    assert sorted(str(p) for p in workdir.rglob("*")) == before


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(ps=(0.0, 0.0)), "distinct"),
        (dict(ps=(0.0, float("nan"))), "finite"),
        (dict(label_noise=(1.0,)), r"in \[0, 1\)"),
        (dict(label_noise=(0.1, 0.1)), "distinct"),
        (dict(seeds=0), "positive"),
    ],
)
def test_bad_values_are_refused(kwargs, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        sweep.run_sweep(NSF, tmp_path, **{**SWEEP, **kwargs})
    assert not any(tmp_path.iterdir())


def test_population_refuses_other_optimizers(tmp_path):
    for overrides in (dict(optimizer="sgd"), dict(p_schedule="pulse_tidal")):
        with pytest.raises(ConfigError, match="constant"):
            population.train_population(
                dataclasses.replace(NSF, **overrides), (0.0,), (0,), tmp_path
            )
    with pytest.raises(ValueError, match="map_batch_size"):
        population.train_population(NSF, (0.0,), (0,), tmp_path, map_batch_size=-1)
    assert population.default_map_batch_size("cpu") == 1
    assert population.default_map_batch_size("gpu") == 0


def test_cifar10_from_disk_through_the_command(fake_cifar10, tmp_path, capsys):
    argv = ["--config", "cifar10", "--data_dir", str(fake_cifar10), "--model", "tiny"]
    argv += ["--batch_size", "8", "--eval_batch_size", "8", "--num_steps", "2"]
    argv += ["--warmup_steps", "1", "--eval_every_steps", "2", "--no-progress"]
    argv += ["--p", "0", "0.5", "--seeds", "1", "--workdir", str(tmp_path / "c")]
    assert sweep.main(argv) == 0
    with open(tmp_path / "c" / "results.json") as f:
        rows = json.load(f)
    assert [(r["p"], r["seed"], r["label_noise"]) for r in rows] == [
        (0.0, 0, 0.0),
        (0.5, 0, 0.0),
    ]
    out = capsys.readouterr().out
    assert "### label noise 0" in out
    line = (
        "NOT EVIDENCE (a smoke test): 1 final seed (fewer than 5); "
        "learning rates not tuned"
    )
    assert out.splitlines().count(line) == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--p", "0", "abc"], "argument --p: expected a number"),
        (["--p", "0", "inf"], "must be finite"),
        (["--p", "0.5", "0.5"], "--p: p values must be distinct"),
        (["--label_noise", "1"], "label_noise must be in [0, 1)"),
        (["--seeds", "0"], "argument --seeds: must be > 0"),
        (["--flavour", "rmsprop"], "argument --flavour: invalid choice"),
        (["--optimizer", "sgd"], "unrecognized arguments: --optimizer"),
        (["--num_steps", "-3"], "num_steps must be > 0"),
        (["--map_batch_size", "-1"], "must be >= 0"),
        (["--lr_grid", "0.1", "1"], "lr_grid needs --tune"),
        (["--tune_seeds", "3"], "tune_seeds needs --tune"),
        (["--tune", "--lr_grid", "0.1", "-1"], "must be a positive number"),
        (["--tune", "--lr_grid", "0.1", "0.1"], "lr_grid repeats a value"),
        (["--tune", "--val_fraction", "0.5"], "must be in (0, 0.5)"),
        (["--tune", "--tune_seeds", "0"], "must be > 0"),
        (["--tune", "--max_steps_this_run", "2"], "cannot be used with --tune"),
    ],
)
def test_cli_mistakes_are_one_line_exit_2(argv, expected, capsys, tmp_path):
    argv = ["--config", "tiny", "--workdir", str(tmp_path / "w"), *argv]
    assert sweep.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{sweep.PROG}: error: ")
    assert expected in lines[0], lines[0]
    assert not (tmp_path / "w").exists()


def test_help_names_the_sweeps_flags():
    # That --help loads no jax: test_cli.test_help_parses_before_importing_jax_or_flax.
    text = sweep.build_parser().format_help()
    for flag in ("--p", "--seeds", "--label_noise", "--flavour", "--normalize"):
        assert flag in text
    for flag in ("--tune", "--lr_grid", "--tune_seeds", "--val_fraction"):
        assert flag in text
    assert text.count("--val_fraction") == 1  # the search's, not the config field's


@pytest.mark.slow  # 8 tiny runs one after another: 70 s on a loaded 2-core machine
def test_tuned_sweep_tunes_every_p_then_trains_the_final_seeds(tmp_path, capsys):
    workdir = tmp_path / "t"
    argv = ["--config", "tiny", "--p", "0", "0.5", "--seeds", "2", "--tune"]
    argv += ["--lr_grid", "0.3", "0.03", "--tune_seeds", "1", "--val_fraction", "0.2"]
    argv += ["--lr_extend", "0"]
    assert sweep.main([*argv, "--workdir", str(workdir)]) == 0
    out = capsys.readouterr().out
    line = (
        "NOT EVIDENCE (a smoke test): the tiny preset (for tests); "
        "2 final seeds (fewer than 5)"
    )
    assert out.splitlines().count(line) == 1
    record = json.loads((workdir / "verdicts.json").read_text())
    tuning = record["tuning"]
    assert list(tuning) == ["p=0@noise=0", "p=0.5@noise=0"]
    plan = json.loads((workdir / "tuning" / "plan.json").read_text())
    assert len(plan) == 4  # the same two trials for every p
    for k, entry in enumerate(plan):
        trial = tuning[entry["key"]]
        assert trial["grid"] == [0.03, 0.3]
        metrics = json.loads(
            (workdir / "tuning" / f"trial{k}" / "metrics.json").read_text()
        )
        (mine,) = [
            t for t in trial["trials"] if t["learning_rate"] == entry["learning_rate"]
        ]
        assert mine["seed"] == 1000
        assert mine["val_accuracy"] == metrics[-1]["test_accuracy"]
    rows = json.loads((workdir / "results.json").read_text())
    assert [(r["p"], r["seed"]) for r in rows] == [(0, 0), (0, 1), (0.5, 0), (0.5, 1)]
    for r in rows:
        chosen = tuning[f"p={r['p']:g}@noise=0"]
        assert r["learning_rate"] == chosen["chosen"]["learning_rate"]
        assert chosen["edge"] == ("low" if r["learning_rate"] == 0.03 else "high")
        best = max((t for t in chosen["trials"]), key=lambda t: t["val_accuracy"])
        assert chosen["val_target"] == best["val_accuracy"]
    # The final runs: one population (group0), on the whole training set.
    final = json.loads((workdir / "final" / "group0" / "population.json").read_text())
    assert final["trials"][3]["seed"] == 1 and final["val_fraction"] == 0.0
    md = (workdir / "results.md").read_text()
    assert "lr tuned per p and noise level" in md and "## Tuning" in md
    assert "| grid index | p=0 (edge: " in md


def _rows(acc):
    # acc[p][seed] at one noise level, p = -0.5, 0, 0.5, 1.
    return [
        dict(
            p=p,
            seed=s,
            label_noise=0.2,
            final_test_accuracy=a,
            final_test_loss=None if a < 0 else 1.0,
        )
        for p, seeds in zip((-0.5, 0.0, 0.5, 1.0), acc, strict=True)
        for s, a in enumerate(seeds)
    ]


def test_landscape_best_ties_and_modes():
    noise = np.array([0.0, 0.01, -0.01, 0.002])
    # Two peaks (0 and 1) with a significant dip at 0.5; -0.5 tied with the best:
    # its paired differences to p = 0 (-0.0005 on average) change sign over seeds.
    jitter = np.array([0.003, -0.002, 0.0, 0.001])
    acc = [0.9 + noise + jitter, 0.9 + noise + 0.001, 0.5 + noise, 0.8 + noise]
    table, (verdict,) = landscape.summarize(_rows(acc))
    assert verdict["best_p"] == 0.0 and verdict["tied_ps"] == [-0.5, 0.0]
    assert verdict["modes"] == [0.0, 1.0] and not verdict["unimodal"]
    (dip,) = verdict["dips"]
    assert dip["at"] == 0.5 and dip["significant"]
    np.testing.assert_allclose(dip["diff_mean"], -0.3)
    row = table[2]
    np.testing.assert_allclose(row["vs_sgd_mean"], 0.5 - 0.901)
    assert row["vs_sgd_ci95"] == pytest.approx(0.0, abs=1e-12)
    text = landscape.markdown(table, [verdict], flavour="adam")
    assert "| 0.5 | 50.05 ± " in text and "Adam" in text and "not unimodal" in text


def test_landscape_flat_noise_is_unimodal_and_counts_nonfinite_losses():
    rng = np.random.default_rng(0)
    acc = 0.7 + 0.05 * rng.standard_normal((4, 3))
    rows = _rows(acc)
    rows[0]["final_test_loss"] = None
    table, (verdict,) = landscape.summarize(rows)
    assert verdict["unimodal"]  # wiggles within the seed noise
    assert table[0]["nonfinite_losses"] == 1
    with pytest.raises(ValueError, match="every seed"):
        landscape.summarize(rows[1:])


def test_not_detected_differences_say_what_was_detectable():
    noise = np.array([0.0, 0.01, -0.01, 0.002])
    acc = [0.9 + noise, 0.9 + noise[::-1], 0.5 + noise, 0.8 + noise]
    table, (verdict,) = landscape.summarize(_rows(acc))
    # p = -0.5 and 0 tie (equal seed means): differences noise - noise[::-1].
    diffs = noise - noise[::-1]
    expected = detectable_difference(diffs)
    assert verdict["best_p"] == -0.5 and verdict["tied_ps"] == [-0.5, 0.0]
    np.testing.assert_allclose(table[1]["vs_best_detectable"], expected, rtol=1e-9)
    np.testing.assert_allclose(table[0]["vs_sgd_detectable"], expected, rtol=1e-9)
    assert np.isnan(table[0]["vs_best_detectable"])  # the best itself
    assert np.isnan(table[2]["vs_sgd_detectable"])  # 40 points below: detected
    assert np.isnan(table[2]["vs_best_detectable"])  # not tied
    text = landscape.markdown(table, [verdict], flavour="sgd")
    points = f"detectable ≥ {100 * expected:.2f} points"
    assert f"| SGD, tied ({points}) |" in text
    assert f"| **best**, vs p = 0 ({points}) |" in text
    (dip,) = verdict["dips"]
    assert dip["significant"] and np.isnan(dip["detectable"])


def test_a_dip_within_the_noise_reports_its_detectable_difference():
    noise = np.array([0.0, 0.01, -0.01, 0.002])
    wobble = np.array([0.004, -0.004, 0.002, -0.001])
    acc = [0.9 + noise, 0.899 + noise + wobble, 0.9 + noise, 0.5 + noise]
    _, (verdict,) = landscape.summarize(_rows(acc))
    (dip,) = verdict["dips"]
    assert not dip["significant"] and verdict["unimodal"]
    np.testing.assert_allclose(
        dip["detectable"], detectable_difference(wobble - 0.001), rtol=1e-9
    )


def _trend_rows(best_by_level, seeds=4, gap=0.05, spread=0.0, seed=0):
    # Accuracy 0.8 everywhere but ``gap`` higher at each level's best p, plus
    # per-run noise of standard deviation ``spread``.
    rng = np.random.default_rng(seed)
    return [
        dict(
            p=p,
            seed=s,
            label_noise=f,
            final_test_accuracy=0.8 + gap * (p == best) + spread * rng.normal(),
            final_test_loss=1.0,
        )
        for f, best in best_by_level.items()
        for p in (-0.5, 0.0, 0.25, 0.5)
        for s in range(seeds)
    ]


def test_best_p_moving_up_is_detected_with_the_grid_resolution():
    trend = landscape.best_p_trend(_trend_rows({0.0: 0.0, 0.2: 0.25, 0.4: 0.5}))
    assert trend["best_p"] == [0.0, 0.25, 0.5]
    assert trend["slope"] == pytest.approx(1.25)
    # Clear gaps: every resample finds the same best p.
    assert trend["slope_ci95"] == pytest.approx([1.25, 1.25])
    assert trend["verdict"] == "up"
    down = landscape.best_p_trend(_trend_rows({0.0: 0.5, 0.4: -0.5}))
    assert down["slope"] == pytest.approx(-2.5) and down["verdict"] == "down"
    line = landscape.trend_line(trend)
    assert "best p 0 at noise 0, 0.25 at noise 0.2, 0.5 at noise 0.4" in line
    assert line.endswith("[1.25, 1.25] (resolution: the p grid): up.")
    # The same best p at three levels: exactly 0, not centring's rounding.
    flat = landscape.best_p_trend(_trend_rows({0.0: 0.5, 0.2: 0.5, 0.4: 0.5}))
    assert flat["slope"] == 0.0 and flat["slope_ci95"] == [0.0, 0.0]
    assert "slope 0 p per unit noise, 95 % bootstrap interval [0, 0]" in (
        landscape.trend_line(flat)
    )


def test_best_p_trend_within_the_seed_noise_is_not_detected():
    rows = _trend_rows({0.0: 0.0, 0.4: 0.0}, seeds=5, gap=0.0, spread=0.02)
    trend = landscape.best_p_trend(rows, resamples=500, seed=1)
    low, high = trend["slope_ci95"]
    assert low < 0 < high and trend["verdict"] == "not detected"
    again = landscape.best_p_trend(rows, resamples=500, seed=1)
    assert again == trend  # seeded
    one_seed = landscape.best_p_trend(_trend_rows({0.0: 0.0, 0.4: 0.5}, seeds=1))
    assert np.isnan(one_seed["slope_ci95"]).all()
    assert one_seed["verdict"] == "not detected"
    with pytest.raises(ValueError, match="two or more noise levels"):
        landscape.best_p_trend(_trend_rows({0.0: 0.0}))
