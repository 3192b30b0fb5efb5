"""Smoke tests of the benchmark scripts: they run, and what they write is complete and sane."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import compare_report  # noqa: E402


def compare(tmp_path, mnist_dir, *flags):
    out = tmp_path / "results"
    cmd = [
        sys.executable,
        str(BENCHMARKS / "compare.py"),
        "--quick",
        "--test-images=2000",
        f"--data-dir={mnist_dir}",
        "--no-download",
        f"--out={out}",
        *flags,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600), out


def run_compare(tmp_path, mnist_dir, systems):
    done, out = compare(tmp_path, mnist_dir, f"--systems={systems}")
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    markdown = (out / "results.md").read_text()
    assert done.stdout.strip() == markdown.strip()
    return results, markdown, out


def check_system(results, name, train_images=2000, test_images=2000):
    entry = results["systems"][name]
    assert entry["available"] and "error" not in entry
    assert entry["ready"]["train_images"] == train_images
    assert entry["ready"]["test_images"] == test_images
    assert entry["ready"]["warmup_s"] > 0
    (epoch,) = entry["epochs"]
    assert epoch["seconds"] > 0 and epoch["images_per_s"] > 0
    assert 0 < epoch["train_loss"] < 10
    assert 0.5 < epoch["test_accuracy"] <= 1  # 2,000 images are enough to learn something
    inference = entry["inference"]
    assert inference["images_per_s"] > 0
    assert inference["accuracy"] == pytest.approx(epoch["test_accuracy"], abs=1e-6)  # one model
    for latency in ("call_latency", "predict_latency"):
        assert 0 < inference[latency]["median_ms"] <= inference[latency]["p90_ms"]
    assert inference["call_latency"]["calls"] == 100
    assert 10 < entry["finish"]["peak_rss_mb"] < 10_000
    row = results["summary"]["systems"][name]
    assert row["final_test_accuracy"] == epoch["test_accuracy"]


def test_quick_compare_of_the_numpy_system(tmp_path, mnist_dir):
    results, markdown, out = run_compare(tmp_path, mnist_dir, "numpy")
    check_system(results, "numpy")
    assert set(results["systems"]) == {"numpy"}
    assert results["meta"]["quick"] and results["meta"]["epochs"] == 1
    assert results["meta"]["cores"] >= 1 and results["meta"]["cpu"]
    assert "| scratchcnn (numpy) | 1 |" in markdown
    assert "Reproduce: `python benchmarks/compare.py --quick" in markdown
    if importlib.util.find_spec("matplotlib"):
        assert (out / "accuracy_vs_time.png").stat().st_size > 1000


@pytest.mark.slow
def test_quick_compare_with_keras(tmp_path, mnist_dir):
    pytest.importorskip("keras", reason="Keras reference not installed (extra 'reference')")
    results, markdown, _ = run_compare(tmp_path, mnist_dir, "numpy,keras")
    check_system(results, "numpy")
    check_system(results, "keras")
    ratios = results["summary"]["ratios"]["numpy"]
    assert set(ratios) == {
        "epoch_time",
        "fastest_epoch_time",
        "inference_time",
        "call_latency",
        "predict_latency",
        "peak_memory",
    }
    assert all(r > 0 for r in ratios.values())
    assert results["systems"]["keras"]["ready"]["info"]["tf_intra_op_threads"] >= 1
    assert "| Keras/TF | 1 |" in markdown and "Ratios to Keras/TF" in markdown


@pytest.mark.slow
def test_quick_compare_with_pytorch(tmp_path, mnist_dir):
    pytest.importorskip("torch", reason="PyTorch not installed (optional extra 'torch')")
    results, markdown, _ = run_compare(tmp_path, mnist_dir, "numpy,torch")
    check_system(results, "numpy")
    check_system(results, "torch")
    info = results["systems"]["torch"]["ready"]["info"]
    assert info["torch"] and info["intra_op_threads"] >= 1
    assert "| PyTorch | 1 |" in markdown and "PyTorch 2." in markdown


def test_a_failing_system_fails_the_run_with_one_line(tmp_path, mnist_dir):
    """numpy's worker dies in its first evaluation (a batch size of 0): exit 1, one line saying
    so on stderr, and the report records the failure."""
    done, out = compare(tmp_path, mnist_dir, "--systems=numpy", "--eval-batch-size=0")
    assert done.returncode == 1
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("compare: numpy failed")]
    assert "Error" in line
    results = json.loads((out / "results.json").read_text())
    assert "error" in results["systems"]["numpy"]
    assert "scratchcnn (numpy) failed:" in (out / "results.md").read_text()
    assert not (out / "accuracy_vs_time.png").exists()  # nothing to draw


def test_failures_named_systems_must_run_and_the_default_skips():
    sys.path.insert(0, str(BENCHMARKS))
    import compare

    ok = {"available": True, "epochs": [{"epoch": 1}]}
    missing = {"available": False, "note": "ImportError: No module named 'torch'"}
    assert compare.failures({"systems": {"numpy": ok, "torch": missing}}, required=False) == []
    assert compare.failures({"systems": {"numpy": ok, "torch": missing}}, required=True) == [
        "compare: torch did not run: ImportError: No module named 'torch'"
    ]
    assert compare.failures({"systems": {"torch": missing}}, required=False) == [
        "compare: no system ran (all were skipped)"
    ]
    broken = {"available": True, "epochs": [], "error": "worker exited (1)"}
    assert compare.failures({"systems": {"numpy": ok, "numba": broken}}, required=False) == [
        "compare: numba failed: worker exited (1)"
    ]


def test_compare_without_data_is_one_line(tmp_path):
    cmd = [sys.executable, str(BENCHMARKS / "compare.py"), "--quick", "--systems=numpy",
           f"--data-dir={tmp_path}", "--no-download", f"--out={tmp_path / 'out'}"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("compare: error: mnist: missing train-images-idx3-ubyte.gz")


def test_report_names_a_skipped_system():
    epoch = {"epoch": 1, "seconds": 2.0, "images_per_s": 500.0, "train_loss": 0.5}
    epoch.update(test_loss=0.3, test_accuracy=0.9, peak_rss_mb=200.0)
    results = {
        "meta": {
            "arch": "keras-example",
            "batch_size": 128,
            "optimizer": "SGD(lr=0.05, momentum=0.9)",
            "epochs": 1,
            "cpu": "Test CPU",
            "cores": 2,
            "python": "3.11",
            "started_utc": "now",
            "command": "python benchmarks/compare.py --quick",
        },
        "systems": {
            "numpy": {
                "available": True,
                "ready": {
                    "train_images": 1000,
                    "startup_s": 1.0,
                    "warmup_s": 0.5,
                    "info": {"numpy": "2", "blas": []},
                },
                "epochs": [epoch],
            },
            "numba": {"available": False, "note": "ImportError: no numba"},
        },
    }
    results["summary"] = compare_report.summarize(results, "keras")
    text = compare_report.markdown(results)
    assert "scratchcnn (numba) skipped: ImportError: no numba" in text
    assert "| scratchcnn (numpy) | 2.00 | 500 | 0.9000 | — |" in text
    assert "| 1.0 | 0.5 |" in text
    assert results["summary"]["ratios"] == {}


def test_kernels_script_reports_every_kernel_of_the_keras_example():
    cmd = [sys.executable, str(BENCHMARKS / "kernels.py"), "--quick", "--json", "-"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["matmul_1024"]["gflops"] > 0.1
    assert len(result["conv_gemms"]) == 5  # 2 products for the first conv, 3 for the second
    numpy_rows = [k for k in result["kernels"] if k["backend"] == "numpy"]
    kernels = {k["kernel"].split(" ")[0] for k in numpy_rows}
    assert kernels == {
        "conv2d_forward",
        "conv2d_backward",
        "relu_forward",
        "relu_backward",
        "maxpool2d_forward",
        "maxpool2d_backward",
        "dense_forward",
        "dense_fwd+backward",
    }
    for row in numpy_rows:
        assert 0 < row["min_s"] <= row["median_s"] and row["gflops"] > 0 and row["gb_per_s"] > 0
    assert result["training_step_kernel_sum"]["numpy"]["epoch_s"] > 0
    if "numba" not in {k["backend"] for k in result["kernels"]}:
        assert result["notes"]["numba"].startswith("skipped")
