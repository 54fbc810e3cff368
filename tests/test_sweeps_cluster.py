"""A sweep on a multi-node Ray cluster emulated on one machine (``ray.cluster_utils.Cluster``:
a head and a worker node, one CPU each), whose tasks cannot touch the output directory.

Every Python process the cluster starts loads ``sitecustomize`` from a directory of this test
(through ``PYTHONPATH``): in Ray's worker processes it installs an audit hook
(:func:`sys.addaudithook`) that refuses, and logs, any file access under the driver's
directory (open, mkdir, rename, remove, listdir, ...).  So a task that wrote its results into
the output directory, or read it, fails the test, as it would on a cluster without a shared
file system.  Slow: starting two Ray nodes takes tens of seconds on a loaded machine."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from bayes_qse.errors import ConfigError
from bayes_qse.experiments import store as store_module
from bayes_qse.experiments.locks import RunNotice
from bayes_qse.experiments.units import SCRATCH_ENV, scratch_token
from bayes_qse.sweeps import expand, open_results, run_sweep

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

SPEC = {
    "chunk": 5,
    "grid": {"game": ["linear"], "learner": ["oracle", "uniform"], "T": [10], "seeds": [0, 1, 2]},
}

SITECUSTOMIZE = """
import os, sys
_root = os.environ.get("BQ_TEST_FORBIDDEN")
if _root and any("default_worker" in str(a) for a in sys.argv):
    _log = os.environ["BQ_TEST_AUDIT_LOG"]
    _events = {"open", "os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.listdir",
               "os.scandir", "shutil.rmtree", "os.chmod", "os.truncate"}
    def _hook(event, args):
        if event not in _events or not args or isinstance(args[0], int) or args[0] is None:
            return
        try:
            path = os.path.abspath(os.fsdecode(args[0]))
        except TypeError:
            return
        if path == _root or path.startswith(_root + os.sep):
            with open(_log, "a") as fh:
                fh.write(f"{os.getpid()} {event} {path}\\n")
            raise PermissionError(f"this worker may not touch {path}")
    sys.addaudithook(_hook)
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two Ray nodes; the driver's directory is forbidden to their workers."""
    base = tmp_path_factory.mktemp("cluster")
    driver = (base / "driver").resolve()
    driver.mkdir()
    site = base / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    audit = base / "audit.log"
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "BQ_TEST_FORBIDDEN": str(driver),
        "BQ_TEST_AUDIT_LOG": str(audit),
        "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"),
    }
    with pytest.MonkeyPatch.context() as mp:  # the nodes' processes inherit this environment
        for k, v in env.items():
            mp.setenv(k, v)
        mp.setenv(SCRATCH_ENV, str(base / "scratch"))
        c = cluster_utils.Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "include_dashboard": False,
                "object_store_memory": 80 * 2**20,
            },
        )
        c.add_node(num_cpus=1, object_store_memory=80 * 2**20)
        c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)

    def touch(path):  # nested: Ray pickles it by value
        try:
            with open(os.path.join(path, "probe"), "w"):
                return "wrote"
        except PermissionError:
            return "refused"

    try:
        probe = ray.remote(num_cpus=1)(touch)
        assert ray.get(probe.remote(str(driver))) == "refused"  # the hook is live
        audit.unlink()
        yield {"driver": driver, "audit": audit, "scratch": base / "scratch", "cluster": c}
    finally:
        ray.shutdown()
        c.shutdown()


def test_cluster_sweep_equals_local_bit_for_bit_without_touching_out(cluster, monkeypatch):
    # Two nodes run the units as tasks that never see the output directory (another path, and
    # the audit hook refuses it); the driver writes what they return.  The results equal the
    # local executor's bit for bit; a notice raised in a worker (its checkpoint, planted in
    # the node's scratch directory, is unreadable) is shown by the driver, with the node's
    # host; no os.fork() warning reaches the user.  Catches: tasks writing into out_dir
    # (the audit log, a failed task), the out dir passed to tasks, environment not
    # forwarded (float64, platform), worker notices swallowed, results that depend on
    # where a unit ran.
    local = cluster["driver"] / "local"
    run_sweep(SPEC, local, progress=False)
    out = cluster["driver"] / "ray"
    monkeypatch.setenv(SCRATCH_ENV, str(cluster["scratch"]))  # forwarded to the tasks
    (unit,) = [u for u in expand(SPEC).units if u.learner == "uniform"]
    planted = cluster["scratch"] / scratch_token(out, unit) / "checkpoints" / "run"
    planted.mkdir(parents=True)
    (planted / "seed1.npz").write_bytes(b"not a checkpoint")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_sweep(SPEC, out, executor="ray", progress=False)
    audit = cluster["audit"].read_text() if cluster["audit"].exists() else ""
    assert audit == "", audit
    notices = [str(w.message) for w in caught if issubclass(w.category, RunNotice)]
    assert any("checkpoint: set aside" in n and "seed1" in n for n in notices), notices
    assert not [w for w in caught if "fork" in str(w.message)]
    a, b = open_results(local), open_results(out)
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert np.unique(a["reward"].values).size > 10
    assert not planted.exists()  # the scratch store is removed once the driver has the parts
    assert len(ray.nodes()) == 2


def test_a_worker_of_another_version_is_refused_in_one_line(cluster, monkeypatch):
    # The driver claims another bayes_qse: every task refuses to run and the sweep fails with
    # one line naming the versions (the cause, not Ray's wrapper).  Catches: no worker check,
    # Ray's multi-line remote traceback with colour codes shown instead.
    real = store_module.library_versions()
    monkeypatch.setattr(store_module, "_VERSIONS", {**real, "bayes_qse": "0.0.0-driver"})
    with pytest.raises(ConfigError) as info:
        run_sweep(SPEC, cluster["driver"] / "versions", executor="ray", progress=False)
    text = str(info.value)
    assert "\n" not in text and "\x1b" not in text and "Traceback" not in text, text
    assert f"bayes_qse {real['bayes_qse']} (driver: 0.0.0-driver)" in text, text
    assert text.startswith("unit game=linear"), text
