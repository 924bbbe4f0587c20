"""focusnet predict on a Dask cluster: the same tables as one process, interruption and resume included."""

import signal
import subprocess
import sys

import pytest

from focusnet.images import read_image, write_tiff
from focusnet.journal import journal_path

pytest.importorskip("distributed", reason="Dask's distributed scheduler is part of the test environments")
# Worker processes each start TensorFlow.


@pytest.fixture(scope="module")
def batch(tmp_path_factory, in_focus_paths, out_of_focus_paths):
    folder = tmp_path_factory.mktemp("cluster_batch")
    images = [read_image(path) for path in list(in_focus_paths) + list(out_of_focus_paths)]
    for index in range(40):
        image = images[index % len(images)]
        write_tiff(folder / f"img_{index:02d}.tif", image[(index % 3) * 40:][:300, :400])
    return folder


def predict(*arguments, **kwargs):
    return subprocess.run([sys.executable, "-m", "focusnet", "predict", *map(str, arguments)], capture_output=True,
                          text=True, timeout=900, **kwargs)


@pytest.fixture(scope="module")
def one_process(batch, tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    result = predict(batch, "--csv", out / "f.csv", "--patches-csv", out / "p.csv")
    assert result.returncode == 0, result.stderr
    return (out / "f.csv").read_bytes(), (out / "p.csv").read_bytes()


def test_a_local_cluster_writes_the_same_tables(batch, one_process, tmp_path):
    result = predict(batch, "--csv", tmp_path / "f.csv", "--patches-csv", tmp_path / "p.csv", "--workers", "2",
                     "--overlay-dir", tmp_path / "overlays")
    assert result.returncode == 0, result.stderr
    assert ((tmp_path / "f.csv").read_bytes(), (tmp_path / "p.csv").read_bytes()) == one_process
    assert len(list((tmp_path / "overlays").glob("*_focus.png"))) == 40
    assert "predict: 100%" in result.stderr  # the progress bar counts images as workers finish them


def test_a_running_scheduler_is_used_as_given(batch, one_process, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = predict(batch, "--csv", tmp_path / "f.csv", "--patches-csv", tmp_path / "p.csv", "--scheduler",
                         cluster.scheduler_address)
    assert result.returncode == 0, result.stderr
    assert ((tmp_path / "f.csv").read_bytes(), (tmp_path / "p.csv").read_bytes()) == one_process


def test_an_interrupted_cluster_run_resumes_to_the_same_tables(batch, one_process, tmp_path):
    import time

    out = tmp_path / "f.csv"
    command = [sys.executable, "-m", "focusnet", "predict", str(batch), "--csv", str(out), "--patches-csv",
               str(tmp_path / "p.csv"), "--workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = journal_path(out)
    start = time.monotonic()
    while not journal.exists() or journal.read_bytes().count(b"\n") < 6:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() - start < 600
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "--resume" in err.strip().splitlines()[-1] and not out.exists()
    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert (out.read_bytes(), (tmp_path / "p.csv").read_bytes()) == one_process


def test_workers_must_be_a_count(batch, tmp_path):
    result = predict(batch, "--csv", tmp_path / "f.csv", "--workers", "0")
    assert result.returncode == 1
    assert "the number of workers must be a whole number >= 1, got 0 (--workers)" in result.stderr
    assert "Traceback" not in result.stderr and not journal_path(tmp_path / "f.csv").exists()


def test_the_throughput_benchmark_runs(tmp_path):
    from conftest import REPO

    out = tmp_path / "cluster.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cluster.py"), "--smoke", "--json", str(out)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    report = json.loads(out.read_text())
    assert report["identical_tables"] and [run["run"] for run in report["runs"]] == ["one process", "--workers 1",
                                                                                       "--workers 2"]
    assert all(run["images_per_s"] > 0 for run in report["runs"])
