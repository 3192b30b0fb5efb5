"""Peak memory of refused hostile files: model bombs and IDX bombs, each read in a process of its
own (issue #13: a rejected input must stay under 300 MB).

    python benchmarks/hostile_memory.py [--out benchmarks/results/hostile_memory.json] [--keep DIR]

Each attack is a small file that declares something huge: a model archive member that inflates
to 2 GiB, an architecture of 10^9 filters or 10^6 units, a .npy header promising 1 GiB, an IDX
.gz header promising 1.5 TiB, or 800 MB behind 0.5 MB of zeros, or twice what its stream holds.
A child process reads it with the public API (``scratchcnn.load_model`` / ``read_idx``) and
reports the error it got and its own peak resident memory (VmHWM); the baseline row is a child
that only imports scratchcnn. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MB = 1 << 20
LIMIT_MB = 300

CHILD = r"""
import json, sys, time
sys.path.insert(0, {benchmarks!r})
from process_memory import peak_rss_mb
import scratchcnn as sc
from scratchcnn.data import read_idx
kind, path = sys.argv[1], sys.argv[2]
started = time.perf_counter()
try:
    if kind == "model":
        sc.load_model(path)
    elif kind == "idx":
        read_idx(path)
    outcome = "loaded"
except Exception as err:
    outcome = f"{{type(err).__name__}}: {{err}}"
print(json.dumps({{"outcome": outcome, "seconds": time.perf_counter() - started,
                  "peak_mb": peak_rss_mb()}}))
"""


def npy_header(shape, descr="<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": tuple(shape)}
    )
    return buffer.getvalue()


def model_members(model) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.npz"
        import scratchcnn as sc

        sc.save_model(model, path)
        with zipfile.ZipFile(path) as zf:
            return {info.filename: zf.read(info) for info in zf.infolist()}


def write_zip(path: Path, members: dict[str, bytes], bomb: str | None = None, bomb_mb: int = 0):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            if name != bomb:
                zf.writestr(name, data)
        if bomb:
            with zf.open(bomb, "w", force_zip64=True) as out:
                out.write(npy_header((bomb_mb * MB // 4,)))
                zeros = bytes(MB)
                for _ in range(bomb_mb):
                    out.write(zeros)


def with_meta(members: dict[str, bytes], change) -> dict[str, bytes]:
    meta = json.loads(str(np.load(io.BytesIO(members["__meta__.npy"]))))
    change(meta["architecture"])
    buffer = io.BytesIO()
    np.save(buffer, np.array(json.dumps(meta)))
    return {**members, "__meta__.npy": buffer.getvalue()}


def make_attacks(folder: Path) -> list[tuple[str, str, Path]]:
    sys.path.insert(0, str(REPO))
    import scratchcnn as sc

    members = model_members(sc.build_model("scratchnet", seed=0))
    attacks = []

    path = folder / "inflates-to-2GiB.npz"  # the 2.3 MB file of a 2 GiB member
    write_zip(path, members, bomb="layers.0.weight.npy", bomb_mb=2048)
    attacks.append(("model: a member that inflates to 2 GiB", "model", path))

    path = folder / "filters-1e9.npz"
    write_zip(path, with_meta(members, lambda a: a["layers"][0]["config"].update(filters=1e9)))
    attacks.append(("model: JSON declares filters: 1e9", "model", path))

    path = folder / "units-1e6.npz"
    write_zip(path, with_meta(members, lambda a: a["layers"][8]["config"].update(units=10**6)))
    attacks.append(("model: Dense(10**6) after a 3136-wide Flatten", "model", path))

    path = folder / "input-4096x4096.npz"
    write_zip(path, with_meta(members, lambda a: a.update(input_shape=[1, 4096, 4096])))
    attacks.append(("model: input 4096x4096 (Dense of 2 GiB)", "model", path))

    path = folder / "header-promises-1GiB.npz"
    write_zip(path, {**members, "layers.0.weight.npy": npy_header((1 << 28,)) + bytes(64)})
    attacks.append(("model: .npy header promises 1 GiB, holds 64 B", "model", path))

    path = folder / "promises-1.5TiB-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">III", 2**31, 28, 28) + bytes(5000))
    attacks.append(("IDX .gz: header 2^31x28x28, 5 KB of data", "idx", path))

    path = folder / "promises-822MB-holds-512MB-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">III", 2**20, 28, 28))
        zeros = bytes(MB)
        for _ in range(512):
            f.write(zeros)
    attacks.append(("IDX .gz: 822 MB promised, 512 MB of zeros", "idx", path))

    path = folder / "promises-2x-idx1-ubyte.gz"
    payload = np.random.default_rng(0).integers(0, 255, 200 * MB, dtype=np.uint8).tobytes()
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 400 * MB) + payload)
    attacks.append(("IDX .gz: 400 MB promised, 200 MB of random bytes", "idx", path))
    return attacks


def measure(kind: str, path: Path | None) -> dict:
    code = CHILD.format(benchmarks=str(REPO / "benchmarks"))
    if kind == "baseline":
        code = code.replace("kind, path = sys.argv[1], sys.argv[2]", "kind, path = 'none', ''")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, kind, str(path or "")],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"outcome": f"child failed ({done.returncode}): {done.stderr[-300:]}", "wall": wall}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": wall}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "benchmarks/results/hostile_memory.json")
    p.add_argument("--keep", type=Path, help="make the attack files here and keep them")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        attacks = make_attacks(folder)
        rows = [("baseline: import scratchcnn, read nothing", None, measure("baseline", None))]
        for name, kind, path in attacks:
            result = measure(kind, path)
            result["outcome"] = result["outcome"].replace(str(folder) + "/", "")
            rows.append((name, path.stat().st_size, result))
    print("| attack | file | peak RSS | time | outcome |\n|---|---:|---:|---:|---|")
    for name, size, result in rows:
        file = f"{size / MB:.2f} MB" if size is not None else ""
        peak = result.get("peak_mb", float("nan"))
        flag = "" if peak < LIMIT_MB else " **over**"
        outcome = result["outcome"][:110]
        print(
            f"| {name} | {file} | {peak:.0f} MiB{flag} | {result.get('seconds', 0):.2f} s | {outcome} |"
        )
    worst = max(r.get("peak_mb", 0) for _, size, r in rows if size is not None)
    print(f"\nworst peak of a refused file: {worst:.0f} MiB (limit {LIMIT_MB} MiB)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps([{"attack": n, "file_bytes": s, **r} for n, s, r in rows], indent=2, default=str)
    )
    return 0 if worst < LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
