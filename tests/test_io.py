import json

import numpy as np
import pytest

import scratchcnn as sc
from scratchcnn.nn.serialization import ModelFileError


@pytest.fixture
def model():
    m = sc.build_model("scratchnet", seed=5)
    for p in m.parameters():  # non-trivial biases too
        p.data += np.float32(0.01)
    return m


def test_save_load_identical_predictions(model, tmp_path, rng):
    path = sc.save_model(model, tmp_path / "m.npz", extra={"test_accuracy": 0.5})
    loaded = sc.load_model(path)
    assert loaded.get_config() == model.get_config()
    assert loaded.metadata == {"test_accuracy": 0.5}
    x = rng.random((9, 1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    for (name, a), (_, b) in zip(model.named_parameters(), loaded.named_parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
        assert b.data.dtype == np.float32


def test_save_leaves_no_temporary_files(model, tmp_path):
    sc.save_model(model, tmp_path / "m.npz")
    sc.save_model(model, tmp_path / "m.npz")  # overwrite in place
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_failed_save_keeps_the_old_file(model, tmp_path, monkeypatch):
    path = sc.save_model(model, tmp_path / "m.npz")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        sc.save_model(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="nope.npz: no such file"):
        sc.load_model(tmp_path / "nope.npz")


def test_truncated_file(model, tmp_path):
    path = sc.save_model(model, tmp_path / "m.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"m\.npz: truncated or corrupt"):
        sc.load_model(path)


def test_renamed_text_file(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("these are not weights\n")
    with pytest.raises(ModelFileError, match=r"notes\.npz: not a scratchcnn-model file"):
        sc.load_model(path)


def test_pickled_object_inside_is_refused(model, tmp_path):
    path = sc.save_model(model, tmp_path / "m.npz")
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["layers.0.weight"] = np.array([{"evil": "payload"}], dtype=object)
    np.savez(path, **arrays)  # np.savez pickles object arrays
    with pytest.raises(ModelFileError, match=r"m\.npz: refuses to load: .*pickled object"):
        sc.load_model(path)


def rewrite_meta(path, change):
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    change(meta)
    np.savez(path, **arrays, __meta__=np.array(json.dumps(meta)))


def test_unknown_layer_is_named(model, tmp_path):
    path = sc.save_model(model, tmp_path / "m.npz")
    rewrite_meta(path, lambda m: m["architecture"]["layers"][2].update({"class": "Swish"}))
    with pytest.raises(ModelFileError, match="layer 2 has unknown type 'Swish'"):
        sc.load_model(path)


def test_foreign_npz_and_future_version(model, tmp_path):
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    with pytest.raises(ModelFileError, match="foreign.npz: not a scratchcnn-model file"):
        sc.load_model(foreign)
    path = sc.save_model(model, tmp_path / "m.npz")
    rewrite_meta(path, lambda m: m.update({"format_version": 99}))
    with pytest.raises(ModelFileError, match="version 99 is not supported"):
        sc.load_model(path)


def test_weight_shape_mismatch(model, tmp_path):
    path = sc.save_model(model, tmp_path / "m.npz")
    rewrite_meta(path, lambda m: m["architecture"]["layers"][0]["config"].update({"filters": 8}))
    with pytest.raises(ModelFileError, match="'layers.0.weight' has shape"):
        sc.load_model(path)


def test_unwritable_destination(model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="cannot write here"):
        sc.save_model(model, blocker / "m.npz")
