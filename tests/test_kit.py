"""The workshop kit: an offline bundle (files, MD5 manifest, README) built without the MedMNIST
host (stubbed transport / a local copy), and loading from it verified against the manifest."""

from __future__ import annotations

import shutil
import warnings

import nbformat
import pytest

import medlab
from medlab import data as D
from medlab.data import UnofficialDataWarning
from medlab.harness import kit
from medlab.harness.cli import main


@pytest.fixture()
def breast_file(data_dir):
    """The shared BreastMNIST copy, with its md5 standing in for the official one."""
    if data_dir is None or not (data_dir / "breastmnist.npz").exists():
        pytest.skip("no local BreastMNIST file")
    return data_dir / "breastmnist.npz"


@pytest.fixture()
def as_official(breast_file, monkeypatch):
    monkeypatch.setitem(D.INFO["breastmnist"], "MD5", D.file_md5(breast_file))
    return breast_file


def _serve(src):
    def downloader(url, output_file, pooch_obj):  # pooch's downloader protocol
        assert url.startswith("https://")
        shutil.copyfile(src, output_file)

    return downloader


def _never(url, output_file, pooch_obj):
    raise AssertionError("must not download")


def test_curriculum_datasets_come_from_the_notebooks(tmp_path):
    names = kit.curriculum_datasets()
    assert names[0] == "pneumoniamnist" and "breastmnist" in names
    assert "organamnist" in names  # notebook 02's pretraining source
    assert len(names) == len(set(names)) and set(names) <= set(D.OFFICIAL_2D)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            'quick = True\ndataset = "dermamnist"\npool = ["octmnist", "x"]\nn = 3',
            metadata={"tags": ["parameters"]},
        ),
        nbformat.v4.new_code_cell('data = medlab.load("bloodmnist", data_dir=data_dir)'),
    ]
    nbformat.write(nb, tmp_path / "07_demo.ipynb")
    assert kit.curriculum_datasets(tmp_path) == ["dermamnist", "octmnist", "bloodmnist"] + list(
        kit.ALSO
    )
    with pytest.raises(D.DataError, match="name the datasets"):
        kit.curriculum_datasets(tmp_path / "empty")


def test_bundle_downloads_verifies_and_loads(as_official, tmp_path):
    out = kit.build_bundle(
        tmp_path / "kit", ["breastmnist"], source=tmp_path / "none", downloader=_serve(as_official)
    )
    md5 = D.file_md5(as_official)
    assert (out / "breastmnist.npz").read_bytes() == as_official.read_bytes()
    assert (out / D.MANIFEST).read_text() == f"{md5}  breastmnist.npz\n"
    readme = (out / "README.md").read_text()
    assert "MEDLAB_DATA_DIR" in readme and md5 in readme and "md5sum -c" in readme
    assert sorted(p.name for p in out.iterdir()) == ["MANIFEST.md5", "README.md", "breastmnist.npz"]
    data = medlab.load("breastmnist", data_dir=out, download=False)
    assert data.official and len(data.test) == 156


def test_bundle_copies_files_already_downloaded(as_official, tmp_path):
    out = kit.build_bundle(tmp_path / "kit", ["breastmnist"], source=as_official.parent)
    assert D.read_manifest(out) == {"breastmnist.npz": D.file_md5(as_official)}
    # built again (e.g. to add a dataset): nothing is downloaded, the manifest keeps its files
    kit.build_bundle(out, ["breastmnist"], source=tmp_path / "none", downloader=_never)
    assert list(D.read_manifest(out)) == ["breastmnist.npz"]


def test_rebuilding_drops_stale_entries_and_refuses_a_changed_file(as_official, tmp_path):
    out = kit.build_bundle(tmp_path / "kit", ["breastmnist"], source=as_official.parent)
    (out / "extra.npz").write_bytes(b"an earlier build's file")
    extra = D.file_md5(out / "extra.npz")
    with (out / D.MANIFEST).open("a") as f:
        f.write(f"{'a' * 32}  gone.npz\n{extra}  extra.npz\n")
    kit.build_bundle(out, ["breastmnist"], source=tmp_path / "none", downloader=_never)
    # the entry of a file that is gone is dropped; a file that still verifies is kept and listed
    assert D.read_manifest(out) == {"breastmnist.npz": D.file_md5(as_official), "extra.npz": extra}
    assert "extra.npz" in (out / "README.md").read_text()
    (out / "extra.npz").write_bytes(b"changed since")
    before = (out / D.MANIFEST).read_bytes()
    with pytest.raises(D.DataChecksumError, match="(?s)extra.npz.*Delete extra.npz"):
        kit.build_bundle(out, ["breastmnist"], source=tmp_path / "none", downloader=_never)
    assert (out / D.MANIFEST).read_bytes() == before


def test_bundle_refuses_an_unofficial_copy_and_writes_no_manifest(breast_file, tmp_path):
    # the shared copy is not the official file: it is not copied, and the download fails
    def offline(url, output_file, pooch_obj):
        raise ConnectionError("host unreachable")

    with pytest.raises(D.DataNotFoundError, match="breastmnist.npz"):
        kit.build_bundle(
            tmp_path / "kit", ["breastmnist"], source=breast_file.parent, downloader=offline
        )
    assert not (tmp_path / "kit" / D.MANIFEST).exists()
    assert not (tmp_path / "kit" / "breastmnist.npz").exists()


def test_damaged_bundle_file_is_refused_with_the_fix(breast_file, tmp_path):
    bundle = tmp_path / "kit"
    bundle.mkdir()
    shutil.copyfile(breast_file, bundle / "breastmnist.npz")
    (bundle / D.MANIFEST).write_text(f"{D.file_md5(breast_file)}  breastmnist.npz\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialDataWarning)
        assert len(medlab.load("breastmnist", data_dir=bundle).test) == 156  # manifest agrees
        (bundle / D.MANIFEST).write_text(f"{'0' * 32}  breastmnist.npz\n")
        with pytest.raises(D.DataChecksumError) as err:
            medlab.load("breastmnist", data_dir=bundle)
    msg = str(err.value)
    assert "MANIFEST.md5" in msg and "0" * 32 in msg and D.file_md5(breast_file) in msg
    assert "medlab download --all --to" in msg and "md5sum -c" in msg


def test_registered_custom_file_in_a_bundle_is_checked(data_dir, tmp_path):
    src = None if data_dir is None else data_dir / "pneumoniamnist_balanced_subset.npz"
    if src is None or not src.exists():
        pytest.skip("no local pneumonia subset")
    shutil.copyfile(src, tmp_path / src.name)
    (tmp_path / D.MANIFEST).write_text(f"{'f' * 32}  {src.name}\n")
    with pytest.raises(D.DataChecksumError, match="manifest"):
        medlab.load("pneumoniamnist_balanced_subset", data_dir=tmp_path)


@pytest.mark.parametrize(
    "text", ["not a manifest\n", f"{'a' * 32}  ../breastmnist.npz\n", f"{'a' * 31}  x.npz\n"]
)
def test_malformed_manifest_names_the_line(tmp_path, text):
    (tmp_path / D.MANIFEST).write_text(text)
    with pytest.raises(D.DataChecksumError, match="line 1.*md5sum format"):
        D.read_manifest(tmp_path)


def test_bundle_bad_input(tmp_path):
    with pytest.raises(D.DataArgumentError, match="single string"):
        kit.build_bundle(tmp_path, "breastmnist")
    with pytest.raises(D.DataArgumentError, match="no dataset"):
        kit.build_bundle(tmp_path, [])
    with pytest.raises(D.DataError, match="custom dataset"):
        kit.build_bundle(tmp_path, ["pneumoniamnist_balanced_subset"])
    (tmp_path / "file").write_text("x")
    with pytest.raises(D.DataDirError, match="is a file"):
        kit.build_bundle(tmp_path / "file", ["breastmnist"])


def test_cli_download_all_to_builds_the_bundle(as_official, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(kit, "curriculum_datasets", lambda folder=None: ["breastmnist"])
    out = tmp_path / "kit"
    assert main(["download", "--all", "--to", str(out), "--data-dir", str(as_official.parent)]) == 0
    printed = capsys.readouterr().out
    assert "copied from" in printed and f"export MEDLAB_DATA_DIR={out}" in printed
    assert D.read_manifest(out) == {"breastmnist.npz": D.file_md5(as_official)}


def test_cli_download_needs_names_or_all(capsys):
    assert main(["download"]) == 2
    assert "--all" in capsys.readouterr().err
    assert main(["download", "breastmnist", "--all"]) == 2


def test_cli_bundle_failure_is_reported(tmp_path, capsys):
    assert main(["download", "pneumoniamnist_balanced_subset", "--to", str(tmp_path)]) == 1
    assert "custom dataset" in capsys.readouterr().err


def test_a_full_disk_names_the_bundle_folder_and_keeps_verified_files(as_official, tmp_path):
    import errno

    def full(url, output_file, pooch_obj):  # the disk fills up while the second file arrives
        raise OSError(errno.ENOSPC, "No space left on device", output_file)

    kit.build_bundle(tmp_path / "kit", ["breastmnist"], source=as_official.parent)
    before = sorted(p.name for p in (tmp_path / "kit").iterdir())
    with pytest.raises(kit.DiskFullError, match=r"no space left .*kit.*free space"):
        kit.build_bundle(tmp_path / "kit", ["breastmnist", "pneumoniamnist"], downloader=full)
    assert sorted(p.name for p in (tmp_path / "kit").iterdir()) == before  # nothing half-written
    with pytest.raises(kit.DiskFullError):  # a bundle folder made by the call is removed again
        kit.build_bundle(tmp_path / "new", ["pneumoniamnist"], downloader=full)
    assert not (tmp_path / "new").exists()
