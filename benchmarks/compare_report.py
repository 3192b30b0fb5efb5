"""Summaries, a Markdown report and a plot from the messages ``compare.py`` collected."""

from __future__ import annotations

import statistics
from pathlib import Path

LABELS = {
    "numpy": "scratchcnn (numpy)",
    "numba": "scratchcnn (numba)",
    "keras": "Keras/TF",
    "torch": "PyTorch",
}


def _steady_epoch_seconds(epochs: list[dict]) -> float:
    """Median epoch time, leaving out epoch 1 (one-time tracing / JIT) when there are others."""
    seconds = [e["seconds"] for e in epochs]
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def summarize(results: dict, reference: str) -> dict:
    """Per available system: headline numbers; plus each one's ratios to ``reference``."""
    summary = {}
    for name, entry in results["systems"].items():
        if not entry.get("available") or not entry.get("epochs"):
            continue
        epochs, ready = entry["epochs"], entry["ready"]
        steady = _steady_epoch_seconds(epochs)
        row = {
            "epoch_seconds": steady,
            "fastest_epoch_seconds": min(e["seconds"] for e in epochs),
            "first_epoch_seconds": epochs[0]["seconds"],
            "train_images_per_s": ready["train_images"] / steady,
            "final_train_loss": epochs[-1]["train_loss"],
            "final_test_accuracy": epochs[-1]["test_accuracy"],
            "peak_train_mb": max(e["peak_rss_mb"] for e in epochs),
            "startup_seconds": ready["startup_s"],
            "warmup_seconds": ready["warmup_s"],
        }
        inference = entry.get("inference")
        if inference:
            row.update(
                inference_images_per_s=inference["images_per_s"],
                inference_seconds=inference["seconds"],
                call_latency_ms=inference["call_latency"]["median_ms"],
                predict_latency_ms=inference["predict_latency"]["median_ms"],
                peak_mb=entry.get("finish", inference)["peak_rss_mb"],
            )
        summary[name] = row
    ref = summary.get(reference)
    ratios = {}
    if ref:
        keys = {
            "epoch_time": "epoch_seconds",
            "fastest_epoch_time": "fastest_epoch_seconds",
            "inference_time": "inference_seconds",
            "call_latency": "call_latency_ms",
            "predict_latency": "predict_latency_ms",
            "peak_memory": "peak_mb",
        }
        for name, row in summary.items():
            if name != reference:
                ratios[name] = {
                    label: row[key] / ref[key]
                    for label, key in keys.items()
                    if key in row and key in ref and ref[key]
                }
    return {"systems": summary, "ratios_to": reference, "ratios": ratios}


def _fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def markdown(results: dict) -> str:
    """The report: set-up line, per-epoch table, summary table, ratios to Keras, notes."""
    meta, summary = results["meta"], results["summary"]
    systems = results["systems"]
    available = [s for s, e in systems.items() if e.get("available")]
    images = next((systems[s]["ready"]["train_images"] for s in available), 0)
    lines = [
        f"## MNIST: {meta['arch']}, batch {meta['batch_size']}, {meta['optimizer']}, "
        f"{images:,} training images x {meta['epochs']} epoch(s)",
        "",
        f"CPU: {meta['cpu']} ({meta['cores']} cores); Python {meta['python']}; {meta['started_utc']}.",
    ]
    for name in available:
        info = systems[name]["ready"]["info"]
        if name == "torch":
            lines.append(
                f"PyTorch {info['torch']} (CPU{', a CUDA build' if info['cuda_build'] else ''}), "
                f"{info['intra_op_threads']} intra-op and {info['inter_op_threads']} inter-op "
                f"threads, oneDNN {'on' if info['mkldnn'] else 'off'}."
            )
        elif name == "keras":
            lines.append(
                f"Keras {info['keras']} / TensorFlow {info['tensorflow']}, "
                f"{info['tf_intra_op_threads']} intra-op and {info['tf_inter_op_threads']} inter-op "
                f"threads, XLA jit_compile={info['jit_compile']}."
            )
        else:
            blas = ", ".join(
                f"{b['internal_api']} {b['version']} ({b['num_threads']} threads)"
                for b in info["blas"]
            )
            extra = (
                f", numba {info['numba']} ({info['numba_threads']} threads)"
                if "numba" in info
                else ""
            )
            lines.append(
                f"{LABELS[name]}: {info.get('threads', '?')} kernel threads; NumPy {info['numpy']}"
                f"{', ' + blas if blas else ''}{extra}."
            )
    lines += [
        "",
        "| system | epoch | seconds | images/s | train loss | test accuracy |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    epochs = max((len(systems[s].get("epochs", [])) for s in available), default=0)
    for k in range(epochs):
        for name in available:
            runs = systems[name].get("epochs", [])
            if k < len(runs):
                e = runs[k]
                lines.append(
                    f"| {LABELS[name]} | {e['epoch']} | {e['seconds']:.2f} | {e['images_per_s']:,.0f} "
                    f"| {e['train_loss']:.4f} | {e['test_accuracy']:.4f} |"
                )
    lines += [
        "",
        "| system | epoch s | train images/s | test accuracy | inference images/s "
        "| latency ms, call | latency ms, predict | peak MB | start-up s | warm-up s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in summary["systems"].items():
        lines.append(
            f"| {LABELS[name]} | {row['epoch_seconds']:.2f} | {row['train_images_per_s']:,.0f} "
            f"| {row['final_test_accuracy']:.4f} | {_fmt(row.get('inference_images_per_s'), ',.0f')} "
            f"| {_fmt(row.get('call_latency_ms'), '.3f')} | {_fmt(row.get('predict_latency_ms'), '.3f')} "
            f"| {_fmt(row.get('peak_mb'), ',.0f')} | {row['startup_seconds']:.1f} "
            f"| {row['warmup_seconds']:.1f} |"
        )
    if summary["ratios"]:
        lines += [
            "",
            f"Ratios to {LABELS[summary['ratios_to']]} (below 1: the system is faster or smaller):",
            "",
            "| system | epoch time | fastest epochs | inference time | latency, call "
            "| latency, predict | peak memory |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, r in summary["ratios"].items():
            cells = [
                _fmt(r.get(k), ".3g")
                for k in (
                    "epoch_time",
                    "fastest_epoch_time",
                    "inference_time",
                    "call_latency",
                    "predict_latency",
                    "peak_memory",
                )
            ]
            lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    lines += ["", "Notes:"]
    lines.append(
        "- Epoch s: training only (no evaluation), median over epochs 2 and later when there are "
        "any. One-time costs come before epoch 1 and are shown apart: start-up (imports, data, "
        "model) and warm-up (one training step and the inference paths, then weights and "
        "optimizer state restored: TensorFlow traces its functions, Numba compiles or loads its "
        "cache). Test accuracy: the full test set after that epoch. Systems start from the same "
        "weights; data order and dropout masks differ. 'Fastest epochs' compares each system's "
        "fastest epoch (epoch 1 included), which a noisy machine disturbs least."
    )
    lines.append(
        "- Inference images/s: predicting the test set in batches of "
        f"{next((systems[s]['inference']['batch_size'] for s in available if 'inference' in systems[s]), '?')}. "
        "Latency: one image, median over the calls; 'call' is scratchcnn's `model.forward(x)`, "
        "Keras's `model(x, training=False)` and PyTorch's `model(x)` under `torch.inference_mode()` "
        "(logits), 'predict' is `model.predict(x)` in scratchcnn and Keras and, in PyTorch, a "
        "NumPy image through the model to its class."
    )
    lines.append(
        "- Peak MB: the process's peak resident memory (VmHWM), data set included (60,000 "
        "float32 images: 188 MB); each system runs in its own process."
    )
    for name, entry in systems.items():
        if "error" in entry:
            lines.append(f"- {LABELS.get(name, name)} failed: {entry['error']}")
        elif not entry.get("available"):
            lines.append(f"- {LABELS.get(name, name)} skipped: {entry.get('note', 'unavailable')}")
    lines += ["", f"Reproduce: `{meta['command']}`", ""]
    return "\n".join(lines)


def plot(results: dict, path: Path) -> Path | None:
    """Test accuracy against cumulative training seconds, one line per system; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not any(entry.get("epochs") for entry in results["systems"].values()):
        return None  # nothing to draw
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, entry in results["systems"].items():
        epochs = entry.get("epochs") or []
        if not epochs:
            continue
        elapsed, total = [], 0.0
        for e in epochs:
            total += e["seconds"]
            elapsed.append(total)
        ax.plot(elapsed, [e["test_accuracy"] for e in epochs], marker="o", label=LABELS[name])
    meta = results["meta"]
    ax.set_xlabel("training wall-clock time (s)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"MNIST {meta['arch']}, batch {meta['batch_size']}, {meta['cpu']}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
