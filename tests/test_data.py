"""The ISBI 2012 loader: download from mirrors (a local HTTP server only), checksums, errors, the split.

The files served come from where ``unet_repro.data.isbi2012`` finds the stack ($UNET_REPRO_DATA or the user
cache, through the ``isbi`` fixture): without them these tests skip (fail under CI=true).
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from unet_repro.data import isbi2012 as D


@pytest.fixture
def serve():
    """Start an HTTP server on 127.0.0.1 for a folder; yields a function folder -> base URL."""
    servers = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

    def start(folder: Path) -> str:
        handler = functools.partial(Quiet, directory=str(folder))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def data_dir(isbi) -> Path:
    """The folder holding the verified ISBI 2012 TIFFs (the ones the ``isbi`` fixture loaded)."""
    return isbi.root


def test_download_from_local_mirror_verifies_pixels(data_dir, serve, tmp_path):
    url = serve(data_dir)
    root = tmp_path / "isbi"
    data = D.load_isbi2012(root, mirrors=[D.Mirror("local", url)])
    assert sorted(p.name for p in root.iterdir()) == sorted(D.FILES)  # no .part left behind
    for name, arr in [
        ("train-volume.tif", data.train_images),
        ("train-labels.tif", data.train_labels),
        ("test-volume.tif", data.test_images),
    ]:
        assert arr.shape == (30, 512, 512) and arr.dtype == np.uint8
        assert D.pixel_sha256(arr) == D.FILES[name]
    assert set(np.unique(data.train_labels)) == {0, 255}
    # a second load finds the files and does not download (a dead mirror would fail otherwise)
    again = D.load_isbi2012(root, mirrors=[D.Mirror("dead", "http://127.0.0.1:9")])
    assert np.array_equal(again.train_labels, data.train_labels)


def test_falls_back_to_next_mirror_and_maps_file_names(data_dir, serve, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    renamed = tmp_path / "renamed"  # like hansbu/CSE527_FinalProject: the labels are label-volume.tif
    renamed.mkdir()
    (renamed / "label-volume.tif").symlink_to(data_dir / "train-labels.tif")
    mirrors = [
        D.Mirror("404", serve(empty)),
        D.Mirror("renamed", serve(renamed), {"train-labels.tif": "label-volume.tif"}),
    ]
    root = tmp_path / "isbi"
    D.download_isbi2012(root, mirrors=mirrors, names=["train-labels.tif"], progress=False)
    assert D.pixel_sha256(D.read_stack(root / "train-labels.tif")) == D.FILES["train-labels.tif"]


def test_corrupt_download_is_an_error_naming_file_and_checksum(data_dir, serve, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    raw = (data_dir / "train-volume.tif").read_bytes()
    (bad / "train-volume.tif").write_bytes(raw[: len(raw) // 3])  # truncated download
    url = serve(bad)
    dest = tmp_path / "isbi" / "train-volume.tif"
    with pytest.raises(D.CorruptFileError) as exc:
        D.download_file(f"{url}/train-volume.tif", dest, D.FILES["train-volume.tif"])
    msg = str(exc.value)
    assert "train-volume.tif" in msg and D.FILES["train-volume.tif"] in msg
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()


def test_wrong_file_is_a_checksum_error(data_dir, serve, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    shutil.copy(data_dir / "test-volume.tif", wrong / "train-volume.tif")  # a valid stack, but not this one
    url = serve(wrong)
    dest = tmp_path / "isbi" / "train-volume.tif"
    with pytest.raises(D.ChecksumError) as exc:
        D.download_file(f"{url}/train-volume.tif", dest, D.FILES["train-volume.tif"])
    msg = str(exc.value)
    assert "train-volume.tif" in msg and D.FILES["train-volume.tif"] in msg and D.FILES["test-volume.tif"] in msg
    assert not dest.exists()


def test_every_mirror_failing_says_where_to_put_which_file(data_dir, serve, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for name in D.FILES:  # every file is the test volume: train files are wrong, test-volume is right
        (wrong / name).symlink_to(data_dir / "test-volume.tif")
    root = tmp_path / "isbi"
    with pytest.raises(D.DownloadError) as exc:
        D.load_isbi2012(root, mirrors=[D.Mirror("wrong", serve(wrong))])
    msg = str(exc.value)
    for name in ("train-volume.tif", "train-labels.tif"):
        assert str(root / name) in msg and D.FILES[name] in msg
        assert "ChecksumError" in msg
    assert (root / "test-volume.tif").is_file()  # the good file was kept and verified


def test_missing_without_download_and_damaged_local_file(tmp_path):
    with pytest.raises(D.DataError, match="train-volume.tif"):
        D.load_isbi2012(tmp_path, download=False)
    (tmp_path / "x.tif").write_bytes(b"not a tiff")
    with pytest.raises(D.CorruptFileError, match="x.tif"):
        D.read_stack(tmp_path / "x.tif", D.FILES["train-volume.tif"])


def test_mirrors_are_pinned_github_commits():
    assert len(D.MIRRORS) >= 2
    for m in D.MIRRORS:
        for name in D.FILES:
            url = m.url(name)
            assert url.startswith("https://raw.githubusercontent.com/"), url
            assert re.search(r"/[0-9a-f]{40}/", url), f"{url} is not pinned to a commit"
            assert url.endswith(".tif")
    hansbu = next(m for m in D.MIRRORS if "hansbu" in m.name)
    assert hansbu.url("train-labels.tif").endswith("/data/raw/label-volume.tif")


def test_heldout_split():
    train, held = D.split_train_heldout()
    assert held == [25, 26, 27, 28, 29] and train == list(range(25))
    with pytest.raises(ValueError):
        D.split_train_heldout(30, (28, 31))
