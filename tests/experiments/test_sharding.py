"""Data parallel on 4 forced host devices matches the single-device run."""

import numpy as np

from ._runs import start_on_host_devices


def test_sharded_matches_single_device(tmp_path):
    outs = {n: tmp_path / f"run{n}.npz" for n in (1, 4)}
    procs = {
        n: start_on_host_devices("tests.experiments._sharded_run", n, out)
        for n, out in outs.items()
    }
    for proc in procs.values():
        log, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, log
    single, sharded = (np.load(outs[n]) for n in (1, 4))
    assert int(single["devices"]) == 1 and int(sharded["devices"]) == 4
    assert bool(sharded["replicated"])
    arrays = sorted(k for k in single.files if k.startswith("arr_"))
    assert arrays and arrays == sorted(k for k in sharded.files if k.startswith("arr_"))
    for key in arrays:
        np.testing.assert_allclose(sharded[key], single[key], rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(sharded["test_loss"], single["test_loss"], rtol=1e-4)
