"""A population of K runs in one compiled step against the same K runs one by one.

Usage::

    python benchmarks/bench_population.py [--quick] [--config mnist1d] [--runs 8]
        [--rounds 15] [--batches 1,2,4,all] [--devices 2] [--out results.json]

Three measurements of the examples' training step
(:func:`nsf_optax.experiments.resnet.train.train_step`, optimizer ``nsf`` with a
constant
p), on one fixed batch per seed so that only the step is timed (every call ended
with ``block_until_ready``, compile and one warm-up call excluded):

1. ``population``: one step of all K runs (``K/2`` exponents x 2 seeds) through
   :class:`nsf_optax.experiments.resnet.population.Population` with each
   ``map_batch_size`` of ``--batches`` (1: one compiled single-run program called
   per run on each run's own state; 2, 4: that many runs vmapped at a time; K:
   one vmap), and the same runs as a population of trials
   (:meth:`~nsf_optax.experiments.resnet.population.Population.of_trials`: the
   peak learning rate traced too, as ``tuning.trials.run_trials`` trains them;
   map_batch_size 1), against ``sequential``: the K
   single runs' own jitted steps (p static, as ``train_and_evaluate`` compiles
   them), called one after another. Candidates are called round-robin, one call
   each per round, and the ratio is the median over rounds of the candidate's
   time over the sequential time of the same round (robust to the load of a
   shared machine). Compile times are reported too: the sequential runs compile
   one step per p.
2. ``memory``: the population state's bytes against K times one run's state
   (model, optimizer state with its p, running metrics), and the compiled
   step's argument, output, alias and temporary bytes from XLA's
   ``memory_analysis()`` for each execution against one run's.
3. ``sharded`` (``--devices N``, CPU): the population step on N forced host
   devices (``XLA_FLAGS=--xla_force_host_platform_device_count=N``) against one
   device, each in its own process, alternated twice; the ratio of the medians
   (1/N is the ideal).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

import numpy as np


def _config(name: str, quick: bool):
    from nsf_optax.experiments.resnet.configs import get_config

    base = get_config(name)
    config = dataclasses.replace(
        base,
        optimizer="nsf",
        p_schedule="constant",
        checkpoint_every_steps=0,
        progress=False,
    )
    if quick:
        config = dataclasses.replace(config, num_filters=4, batch_size=32)
    return config


def _ps(runs: int) -> list[float]:
    return [float(p) for p in np.linspace(-0.5, 0.75, runs // 2)]


def _nbytes(tree: Any) -> int:
    import jax

    return int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree)))


def _memory(compiled) -> dict[str, int]:
    m = compiled.memory_analysis()
    names = ("argument", "output", "alias", "temp")
    return {n: int(getattr(m, f"{n}_size_in_bytes")) for n in names}


def _population(config, data, runs: int, batch: int, trials: bool = False):
    import jax

    from nsf_optax.experiments.resnet import population

    if trials:  # the same runs, their peak learning rate traced too
        configs = [
            dataclasses.replace(config, seed=s, p_value=p)
            for s in (0, 1)
            for p in _ps(runs)
        ]
        pop = population.Population.of_trials(configs, data, batch)
    else:
        pop = population.Population(config, _ps(runs), [0, 1], data, batch)
    pop.place()
    if pop.separate is not None:  # one device, map_batch_size 1: separate runs
        xs, ys = pop._host_batches(0)
        batches = [
            (jax.device_put(x), jax.device_put(y)) for x, y in zip(xs, ys, strict=True)
        ]
        separate = pop.separate

        def call():
            separate.step(batches, pop.seed_index).block_until_ready()

        x, y = batches[0]
        args = (separate.states[0], separate.keys[0], x, y)
        return call, pop, pop._step.lower(*args).compile()
    xs, ys = pop._batches(0)
    args = [pop.state, pop.rng, pop.seed_index, xs, ys]

    def call():
        args[0], args[1], loss = pop._step(*args)
        pop.state, pop.rng = args[0], args[1]  # the donated state's successor
        loss.block_until_ready()

    compiled = pop._step.lower(*args).compile()
    return call, pop, compiled


def _sequential(config, data, ps: list[float]):
    import jax
    from flax import nnx

    from nsf_optax.experiments.resnet import input_pipeline, models, optimizers, train

    runs = []
    for seed in (0, 1):
        idx = input_pipeline.batch_indices(
            seed, 0, len(data.y_train), config.batch_size
        )
        x, y = jax.device_put(data.x_train[idx]), jax.device_put(data.y_train[idx])
        for p in ps:
            cfg = dataclasses.replace(config, p_value=p, seed=seed)
            model = models.create_model(
                cfg.model,
                num_classes=data.num_classes,
                in_features=data.in_features,
                ndim=data.ndim,
                seed=seed,
                num_filters=cfg.num_filters,
            )
            opt = nnx.Optimizer(model, optimizers.create_optimizer(cfg), wrt=nnx.Param)
            metrics = train.create_metrics()
            key = jax.random.fold_in(jax.random.key(seed), 1)
            runs.append([train.make_train_step(cfg), model, opt, metrics, x, y, key])

    def call():
        losses = []
        for run in runs:
            step, model, opt, metrics, x, y, key = run
            loss, run[6] = step(model, opt, metrics, x, y, key)
            losses.append(loss)
        losses[-1].block_until_ready()

    return call


def _single_memory(config, data):
    # One run's state and its step compiled as a function of that state.
    import jax
    from flax import nnx

    from nsf_optax.experiments.resnet import models, optimizers, train

    model = models.create_model(
        config.model,
        num_classes=data.num_classes,
        in_features=data.in_features,
        ndim=data.ndim,
        seed=0,
        num_filters=config.num_filters,
    )
    tx = optimizers.create_optimizer(config, inject_p=True)
    graphdef, state = nnx.split(
        (model, nnx.Optimizer(model, tx, wrt=nnx.Param), train.create_metrics())
    )

    def step(state, x, y, key):
        parts = nnx.merge(graphdef, state)
        loss, key = train.train_step(
            *parts, x, y, key, crop_padding=config.crop_padding, flip=config.flip
        )
        return nnx.state(parts), loss, key

    x = data.x_train[: config.batch_size]
    y = data.y_train[: config.batch_size]
    key = jax.random.key(0)
    compiled = jax.jit(step, donate_argnums=0).lower(state, x, y, key).compile()
    return _nbytes(state), _memory(compiled)


def _timed(call) -> float:
    t = time.perf_counter()
    call()
    return time.perf_counter() - t


def measure(
    config_name: str,
    runs: int,
    rounds: int,
    quick: bool,
    batches: list[int] | None = None,
) -> dict[str, Any]:
    """Sections 1 and 2 in this process."""
    from nsf_optax.experiments.resnet import train

    config = _config(config_name, quick)
    data = train.load_training_set(config)
    if batches is None:
        batches = [1, 2, 4, runs]
    batches = sorted(set(batches) & set(range(1, runs + 1)))
    cands: dict[str, Any] = {}
    compile_s: dict[str, float] = {}
    memory: dict[str, Any] = {}
    t = time.perf_counter()
    seq_call = _sequential(config, data, _ps(runs))
    seq_call()
    compile_s["sequential"] = time.perf_counter() - t
    cands["sequential"] = seq_call
    state_bytes = None
    for b in batches:
        name = f"population map_batch_size={b}" + (" (vmap)" if b == runs else "")
        t = time.perf_counter()
        call, pop, compiled = _population(config, data, runs, b)
        call()
        compile_s[name] = time.perf_counter() - t
        cands[name] = call
        memory[name] = _memory(compiled)
        items = pop.items()
        state_bytes = _nbytes(
            [items[k] for k in ("model", "optimizer", "train_metrics")]
        )
    name = "population of trials, lr and p traced, map_batch_size=1"
    t = time.perf_counter()
    call, _, compiled = _population(config, data, runs, 1, trials=True)
    call()
    compile_s[name], cands[name] = time.perf_counter() - t, call
    memory[name] = _memory(compiled)
    for call in cands.values():  # warm-up
        call()
    times = {n: [] for n in cands}
    for _ in range(rounds):
        for name, call in cands.items():
            times[name].append(_timed(call))
    seq = np.asarray(times["sequential"])
    rows = {
        name: {
            "median_ms": 1e3 * float(np.median(t)),
            "ratio": float(np.median(np.asarray(t) / seq)),
            "compile_s": compile_s[name],
        }
        for name, t in times.items()
    }
    single_bytes, single_memory = _single_memory(config, data)
    return {
        "config": config_name,
        "runs": runs,
        "rounds": rounds,
        "model": config.model,
        "num_filters": config.num_filters,
        "batch_size": config.batch_size,
        "population": rows,
        "memory": {
            "population_state_bytes": state_bytes,
            "single_state_bytes": single_bytes,
            "state_ratio": (state_bytes or 0) / single_bytes,
            "single_step": single_memory,
            "population_step": memory,
        },
    }


def _sharded_child(config_name: str, runs: int, rounds: int, quick: bool) -> None:
    import jax

    from nsf_optax.experiments.resnet import population, train

    config = _config(config_name, quick)
    data = train.load_training_set(config)
    batch = population.default_map_batch_size()
    call, _, _ = _population(config, data, runs, batch)
    call()
    call()
    times = [_timed(call) for _ in range(rounds)]
    print(
        json.dumps(
            {"devices": jax.device_count(), "median_ms": 1e3 * float(np.median(times))}
        )
    )


def sharded(config_name: str, runs: int, rounds: int, devices: int, quick: bool):
    """Section 3: one process per device count, alternated twice."""
    medians: dict[int, list[float]] = {1: [], devices: []}
    for _ in range(2):
        for n in (1, devices):
            env = {
                **os.environ,
                "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}",
                "JAX_PLATFORMS": "cpu",
            }
            argv = [sys.executable, __file__, "--child", "--config", config_name]
            argv += ["--runs", str(runs), "--rounds", str(rounds)]
            argv += ["--quick"] if quick else []
            out = subprocess.run(
                argv, env=env, capture_output=True, text=True, check=True
            )
            medians[n].append(
                json.loads(out.stdout.strip().splitlines()[-1])["median_ms"]
            )
    one, many = float(np.median(medians[1])), float(np.median(medians[devices]))
    return {
        "devices": devices,
        "median_ms": {"1": medians[1], str(devices): medians[devices]},
        "ratio": many / one,
        "ideal": 1 / devices,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", default="mnist1d")
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--devices", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--batches",
        default="1,2,4,all",
        help="the map_batch_size values to time, comma separated (all: K)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.runs < 2 or args.runs % 2:
        parser.error("--runs must be even and >= 2 (K/2 exponents x 2 seeds)")
    batches = args.batches.split(",")
    if not all(b == "all" or (b.isdigit() and int(b) > 0) for b in batches):
        parser.error("--batches must be positive integers or 'all', comma separated")
    if args.child:
        _sharded_child(args.config, args.runs, args.rounds, args.quick)
        return
    import jax

    result = {
        "machine": {
            "backend": jax.default_backend(),
            "device": jax.devices()[0].device_kind,
            "cpus": os.cpu_count(),
            "load_1min": os.getloadavg()[0],
            "python": platform.python_version(),
            "jax": jax.__version__,
        },
        **measure(
            args.config,
            args.runs,
            args.rounds,
            args.quick,
            [args.runs if b == "all" else int(b) for b in batches],
        ),
    }
    if args.devices > 1:
        result["sharded"] = sharded(
            args.config, args.runs, args.rounds, args.devices, args.quick
        )
    result["machine"]["load_1min_end"] = os.getloadavg()[0]
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
