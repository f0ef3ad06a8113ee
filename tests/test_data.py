"""The data layer: real files, provenance, downloads (stubbed transport) and every clear error."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from medmnist import INFO

import medlab
from medlab import data as D


def _save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _layout(n=(6, 2, 3), side=28, rgb=False, labels=2, multilabel=0, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for split, k in zip(D.SPLITS, n, strict=True):
        shape = (k, side, side, 3) if rgb else (k, side, side)
        out[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        cols = multilabel or 1
        out[f"{split}_labels"] = rng.integers(0, labels, (k, cols)).astype(np.uint8)
    return out


# --- real files -------------------------------------------------------------------------------


def test_breast_copy_loads_with_provenance(breast):
    info = INFO["breastmnist"]
    assert breast.train.images.dtype == torch.uint8
    assert breast.train.images.shape == (546, 1, 28, 28)
    assert breast.train.labels.dtype == torch.int64 and breast.train.labels.shape == (546,)
    assert {s: len(breast[s]) for s in D.SPLITS} == info["n_samples"]
    assert breast.task == info["task"] and breast.license == info["license"]
    assert breast.label_names == {int(k): v for k, v in info["label"].items()}
    p = breast.provenance
    assert p["official_md5"] == info["MD5"]
    assert p["md5"] == D.file_md5(p["file"])
    assert p["official"] == (p["md5"] == info["MD5"])


def test_shared_breast_copy_is_marked_unofficial(data_dir):
    if data_dir is None or not (data_dir / "breastmnist.npz").exists():
        pytest.skip("the shared re-saved BreastMNIST copy is not here")
    D._warned_unofficial.clear()
    with pytest.warns(D.UnofficialDataWarning, match="unofficial copy"):
        data = medlab.load("breastmnist", data_dir=data_dir)
    assert data.official is False and "UNOFFICIAL" in repr(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", D.UnofficialDataWarning)  # said once, not again
        medlab.load("breastmnist", data_dir=data_dir)


def test_custom_subset_by_registered_name(pneumonia):
    if pneumonia.name != "pneumoniamnist_balanced_subset":
        pytest.skip("shared subset not available")
    assert pneumonia.provenance["kind"] == "custom" and pneumonia.official is False
    assert {s: len(pneumonia[s]) for s in D.SPLITS} == {"train": 2428, "val": 270, "test": 468}
    counts = pneumonia.train.class_counts()
    assert counts == {"normal": 1214, "pneumonia": 1214}


def test_load_custom_under_given_name(tmp_path):
    f = _save(tmp_path / "mine.npz", **_layout(rgb=True, labels=3))
    data = medlab.load_custom(
        f, name="course_set", task="multi-class", label_names={0: "a", 1: "b", 2: "c"}
    )
    assert data.name == "course_set" and data.n_channels == 3
    assert data.train.images.shape == (6, 3, 28, 28)
    assert data.provenance["official"] is False and data.provenance["md5"] == D.file_md5(f)
    with pytest.raises(D.DataError, match="needs like="):  # a bare path has no task/labels
        medlab.load(str(f))


def test_load_custom_multilabel(tmp_path):
    f = _save(tmp_path / "ml.npz", **_layout(multilabel=14))
    data = medlab.load_custom(f, name="chest_like", like="chestmnist")
    assert data.train.labels.dtype == torch.float32 and data.train.labels.shape == (6, 14)
    assert data.train.multilabel


def test_subset_and_counts(breast):
    sub = breast.train.subset([0, 0, 5])
    assert len(sub) == 3 and torch.equal(sub.images[0], sub.images[1])
    assert sum(breast.test.class_counts().values()) == len(breast.test)


# --- downloads with a stubbed transport ---------------------------------------------------------


def _official_bytes_stub(content: bytes):
    def downloader(url, output_file, pooch_obj):  # pooch's downloader protocol
        assert url.startswith("https://")
        with open(output_file, "wb") as fh:
            fh.write(content)

    return downloader


def test_download_verifies_md5_and_keeps_file(tmp_path, monkeypatch):
    payload = b"pretend-official-file"
    import hashlib

    md5 = hashlib.md5(payload).hexdigest()
    monkeypatch.setitem(D.INFO["breastmnist"], "MD5", md5)
    path = D.download("breastmnist", data_dir=tmp_path, downloader=_official_bytes_stub(payload))
    assert path == tmp_path / "breastmnist.npz" and path.read_bytes() == payload
    assert list(tmp_path.iterdir()) == [path]


def test_download_md5_mismatch_leaves_nothing(tmp_path):
    with pytest.raises(D.DataNotFoundError, match=INFO["breastmnist"]["MD5"]):
        D.download("breastmnist", data_dir=tmp_path, downloader=_official_bytes_stub(b"wrong"))
    assert list(tmp_path.iterdir()) == []


def test_download_network_failure_names_the_fix(tmp_path):
    def broken(url, output_file, pooch_obj):
        with open(output_file, "wb") as fh:
            fh.write(b"partial")
        raise ConnectionError("host unreachable")

    with pytest.raises(D.DataNotFoundError) as err:
        medlab.load("pneumoniamnist", data_dir=tmp_path, downloader=broken)
    msg = str(err.value)
    assert "pneumoniamnist.npz" in msg and INFO["pneumoniamnist"]["MD5"] in msg
    assert str(tmp_path) in msg and "MEDLAB_DATA_DIR" in msg
    assert list(tmp_path.iterdir()) == []


def test_download_then_load_real_file_via_stub(tmp_path, data_dir, monkeypatch):
    """End to end: 'download' the shared BreastMNIST bytes through a stub, md5-checked."""
    if data_dir is None or not (data_dir / "breastmnist.npz").exists():
        pytest.skip("no local BreastMNIST file to serve")
    src = data_dir / "breastmnist.npz"
    monkeypatch.setitem(D.INFO["breastmnist"], "MD5", D.file_md5(src))
    data = medlab.load(
        "breastmnist", data_dir=tmp_path, downloader=_official_bytes_stub(src.read_bytes())
    )
    assert data.official and len(data.train) == 546


def test_missing_without_download(tmp_path):
    with pytest.raises(D.DataNotFoundError, match="download=False"):
        medlab.load("dermamnist", data_dir=tmp_path, download=False)


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLAB_DATA_DIR", str(tmp_path))
    assert D.resolve_data_dir() == tmp_path
    assert D.resolve_data_dir("/x") == Path("/x")
    monkeypatch.delenv("MEDLAB_DATA_DIR")
    assert D.resolve_data_dir() == Path("~/.medmnist").expanduser()


# --- clear errors --------------------------------------------------------------------------------


def test_unknown_name_lists_valid_ones():
    with pytest.raises(
        D.DataError, match="pneumoniamnist.*breastmnist|breastmnist.*pneumoniamnist"
    ):
        medlab.load("pneumonia")


def test_3d_name_is_refused():
    with pytest.raises(D.DataError, match="3D"):
        medlab.load("organmnist3d")


def test_bad_size():
    with pytest.raises(D.DataError, match="28, 64, 128, 224"):
        medlab.load("breastmnist", size=32)


def test_corrupt_npz(tmp_path):
    (tmp_path / "breastmnist.npz").write_bytes(b"PK\x03\x04 truncated garbage")
    with pytest.raises(D.DataLayoutError, match="corrupt or truncated"):
        medlab.load("breastmnist", data_dir=tmp_path)


def test_missing_key(tmp_path):
    arrays = _layout()
    del arrays["val_labels"]
    f = _save(tmp_path / "x.npz", **arrays)
    with pytest.raises(D.DataLayoutError, match="'val_labels' is missing"):
        medlab.load_custom(f, name="x", like="breastmnist")


def test_wrong_image_shape(tmp_path):
    arrays = _layout()
    arrays["train_images"] = arrays["train_images"][:, :, :20]
    f = _save(tmp_path / "x.npz", **arrays)
    with pytest.raises(D.DataLayoutError, match=r"'train_images' has shape \(6, 28, 20\)"):
        medlab.load_custom(f, name="x", like="breastmnist")


def test_wrong_dtype_and_label_rows(tmp_path):
    arrays = _layout()
    arrays["test_images"] = arrays["test_images"].astype(np.float32)
    with pytest.raises(D.DataLayoutError, match="dtype float32; expected uint8"):
        medlab.load_custom(_save(tmp_path / "a.npz", **arrays), name="a", like="breastmnist")
    arrays = _layout()
    arrays["train_labels"] = arrays["train_labels"][:4]
    with pytest.raises(D.DataLayoutError, match="'train_labels' has shape"):
        medlab.load_custom(_save(tmp_path / "b.npz", **arrays), name="b", like="breastmnist")


def test_label_out_of_range(tmp_path):
    f = _save(tmp_path / "x.npz", **_layout(labels=5))
    with pytest.raises(D.DataLayoutError, match="classes 0..1"):
        medlab.load_custom(f, name="x", like="breastmnist")


def test_channels_contradict(tmp_path):
    f = _save(tmp_path / "x.npz", **_layout(rgb=True))
    with pytest.raises(D.DataLayoutError, match="3 channel"):
        medlab.load_custom(f, name="x", like="breastmnist")


def test_split_sizes_contradict_official(tmp_path, data_dir):
    if data_dir is None or not (data_dir / "pneumoniamnist_balanced_subset.npz").exists():
        pytest.skip("shared subset not available")
    shutil.copy(data_dir / "pneumoniamnist_balanced_subset.npz", tmp_path / "pneumoniamnist.npz")
    with pytest.raises(D.DataLayoutError, match="split sizes.*load_custom"):
        medlab.load("pneumoniamnist", data_dir=tmp_path)


def test_custom_name_must_not_be_official(tmp_path):
    f = _save(tmp_path / "x.npz", **_layout())
    with pytest.raises(D.DataError, match="official dataset name"):
        medlab.load_custom(f, name="breastmnist", like="breastmnist")
    with pytest.raises(D.DataError, match="needs like="):
        medlab.load_custom(f, name="y")


@pytest.mark.parametrize(
    "name, suggestion",
    [
        ("<img src=x onerror=alert(1)>", "img_src_x_onerror_alert_1"),
        ("My Subset", "my_subset"),
        ("../x", "x"),
        ("a`b", "a_b"),
        ("-x", "x"),
    ],
)
def test_custom_name_must_be_a_safe_name(tmp_path, name, suggestion):
    f = _save(tmp_path / "x.npz", **_layout())
    with pytest.raises(D.DataError, match=f"lowercase letters.*e.g. name='{suggestion}'"):
        medlab.load_custom(f, name=name, like="breastmnist")
    assert medlab.load_custom(f, name="my-x.v2_a", like="breastmnist").name == "my-x.v2_a"


def test_manifest_that_is_not_utf8(tmp_path):
    (tmp_path / D.MANIFEST).write_bytes(b"\xff\xfe" + b"d41d8cd98f00b204e9800998ecf8427e  a.npz")
    with pytest.raises(D.DataChecksumError, match="not UTF-8.*Copy MANIFEST.md5 again"):
        D.read_manifest(tmp_path)


def test_registered_custom_missing(tmp_path):
    with pytest.raises(D.DataNotFoundError, match="cannot be downloaded"):
        medlab.load("pneumoniamnist_balanced_subset", data_dir=tmp_path)


# --- checks added for bad inputs (more in tests/test_bad_inputs.py) ------------------------------


def test_file_md5_sees_same_size_same_mtime_rewrite(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"A" * 4096)
    first = D.file_md5(f)
    mtime = f.stat().st_mtime_ns
    f.write_bytes(b"B" * 4096)  # same size, rewritten in place, then the same mtime forced
    os.utime(f, ns=(mtime, mtime))
    assert f.stat().st_mtime_ns == mtime and D.file_md5(f) != first
    assert D.file_md5(f) == hashlib.md5(b"B" * 4096).hexdigest()


def test_file_md5_cache_keys_on_inode(tmp_path, monkeypatch):
    monkeypatch.setattr(D.digests, "_RACY_NS", 0)  # cache even fresh files
    f, g = tmp_path / "a.bin", tmp_path / "b.bin"
    f.write_bytes(b"A" * 4096)
    first = D.file_md5(f)
    g.write_bytes(b"B" * 4096)
    st = f.stat()
    os.utime(g, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(g, f)  # same path, size and mtime: another file
    assert D.file_md5(f) != first


def test_shared_file_digests_are_cached(data_dir):
    if data_dir is None or not (data_dir / "pneumoniamnist_balanced_subset.npz").exists():
        pytest.skip("shared subset not available")
    f = data_dir / "pneumoniamnist_balanced_subset.npz"
    expected = medlab.cards.card("pneumoniamnist_balanced_subset")["sha256"]
    assert D.file_sha256(f) == expected
    assert any(k[0] == "sha256" and k[1] == str(f.resolve()) for k in D._digest_cache)


def test_download_checks_an_existing_file(tmp_path, data_dir, monkeypatch):
    if data_dir is None or not (data_dir / "breastmnist.npz").exists():
        pytest.skip("the shared re-saved BreastMNIST copy is not here")
    shutil.copy(data_dir / "breastmnist.npz", tmp_path / "breastmnist.npz")

    def never(url, output_file, pooch_obj):
        raise AssertionError("an existing file must not be downloaded again")

    with pytest.raises(D.DataChecksumError, match="delete it.*medlab.load"):
        D.download("breastmnist", data_dir=tmp_path, downloader=never)
    D._warned_unofficial.clear()
    with pytest.warns(D.UnofficialDataWarning):
        assert medlab.load("breastmnist", data_dir=tmp_path).official is False
    monkeypatch.setitem(D.INFO["breastmnist"], "MD5", D.file_md5(tmp_path / "breastmnist.npz"))
    assert D.download("breastmnist", data_dir=tmp_path, downloader=never) == (
        tmp_path / "breastmnist.npz"
    )


def test_download_removes_stale_pooch_temp_files(tmp_path):
    old = time.time() - 3600
    stale = tmp_path / "tmpab12cd_9"  # pooch's NamedTemporaryFile name: 'tmp' + 8 characters
    stale.write_bytes(b"half a download")
    os.utime(stale, (old, old))
    keep = {
        "tmpzz99yy88": None,  # same pattern but fresh: maybe a download in progress
        "tmp_notes.txt": old,  # not pooch's pattern
        "breastmnist.npz.part": old,
        "tmpABCDEFGH": old,  # pooch's names are lower case
    }
    for name, t in keep.items():
        (tmp_path / name).write_bytes(name.encode())
        if t is not None:
            os.utime(tmp_path / name, (t, t))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "tmpab12cd34").write_bytes(b"not in the data folder itself")
    before = {
        p: (p.stat().st_size, p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p != stale
    }
    seen = []

    def broken(url, output_file, pooch_obj):
        seen.append(stale.exists())
        raise ConnectionError("killed")

    with pytest.raises(D.DataNotFoundError, match="killed"):
        D.download("pneumoniamnist", data_dir=tmp_path, downloader=broken)
    assert seen == [False]  # removed before the attempt
    assert not stale.exists()
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")} == before


def test_download_failure_leaves_no_created_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def broken(url, output_file, pooch_obj):
        raise ConnectionError("host unreachable")

    with pytest.raises(D.DataNotFoundError):
        medlab.load("pneumoniamnist", data_dir="a/b/c", downloader=broken)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "a").mkdir()  # a folder that was there before stays
    with pytest.raises(D.DataNotFoundError):
        D.download("pneumoniamnist", data_dir="a/b/c", downloader=broken)
    assert [p.name for p in tmp_path.rglob("*")] == ["a"]


def test_data_dir_is_absolute_and_not_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEDLAB_DATA_DIR", "rel")
    assert D.resolve_data_dir() == tmp_path / "rel"
    assert D.resolve_data_dir("x/y") == tmp_path / "x" / "y"
    with pytest.raises(D.DataNotFoundError, match="does not exist"):
        medlab.load("pneumoniamnist_balanced_subset")
    with pytest.raises(D.DataNotFoundError, match="does not exist"):
        medlab.load("dermamnist", download=False)
    assert list(tmp_path.iterdir()) == []


def test_empty_split_loads(tmp_path):
    """A file with no validation images loads; it is the training loop that refuses empty data."""
    arrays = _layout(n=(6, 0, 3))
    data = medlab.load_custom(_save(tmp_path / "x.npz", **arrays), name="x", like="breastmnist")
    assert len(data.val) == 0 and len(data.train) == 6
