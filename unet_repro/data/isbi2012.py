"""The ISBI 2012 EM segmentation data (section 3.3 of the paper, first data set).

30 training slices of 512x512 with membrane labels (0 = membrane, 255 = cell) and 30 test slices whose
labels were never published. Each file's decoded pixels are checked against a SHA-256 sum, so a
different or damaged file is an error, never a silently different data set.

Where the data is looked for, in order: the ``root`` argument, ``$UNET_REPRO_DATA``, the user cache
folder of the operating system (``pooch.os_cache``: ``~/.cache/unet-repro/isbi2012`` on Linux, or under
``$XDG_CACHE_HOME``; ``~/Library/Caches/unet-repro/isbi2012`` on macOS; ``%LOCALAPPDATA%`` on Windows).

Files missing there are downloaded from :data:`MIRRORS`: the original challenge TIFFs as committed in
public GitHub repositories, at pinned commits (the challenge site, brainiac2.mit.edu, is closed). A pinned
commit makes the URL immutable; the pixel checksum (not the file bytes, which depend on the TIFF writer)
decides whether the download is the data set. Fetching is pooch's (the scientific Python ecosystem's data
fetcher, as in scikit-image and xarray: retries, a progress bar, the per-OS cache folder); the original files'
byte hashes are not known (only their git blob ids), so pooch checks no hash and the pixel checksum is the
check that counts.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "FILES",
    "ENV_VAR",
    "IsbiData",
    "DataError",
    "CorruptFileError",
    "ChecksumError",
    "DownloadError",
    "Mirror",
    "MIRRORS",
    "pixel_sha256",
    "download_file",
    "download_isbi2012",
    "cache_dir",
    "resolve_root",
    "read_stack",
    "load_isbi2012",
    "split_train_heldout",
    "normalize_image",
]

ENV_VAR = "UNET_REPRO_DATA"

#: file name -> SHA-256 of the decoded pixels (C order, 30 x 512 x 512 uint8), from PROVENANCE.md.
FILES: dict[str, str] = {
    "train-volume.tif": "200da3d452d726e6c9ca1ce04b869d4edb727320d23b516d01cce707dc8c4760",
    "train-labels.tif": "a7cb64000a1a7e542682927e19c91339f58f9f178e0bcce4e207371116f0ca36",
    "test-volume.tif": "1b58fa7ec1d0ff9d39a855622db3ff66a97863036339b0d04be51b2f5a99b0e9",
}
SHAPE = (30, 512, 512)


class DataError(RuntimeError):
    """The data is missing, damaged or not the ISBI 2012 stack; the message says what to do."""


class CorruptFileError(DataError):
    """A file that cannot be decoded as the 30 x 512 x 512 uint8 stack (truncated, not a TIFF, wrong shape)."""


class ChecksumError(DataError):
    """A readable stack whose pixels differ from the expected SHA-256: a different or altered data set."""


class DownloadError(DataError):
    """Every mirror failed for at least one file; the message lists why and where to put which file."""


@dataclass(frozen=True)
class Mirror:
    """One place the original challenge files are published.

    Args:
        name: a short label used in messages.
        base_url: URL of the folder (ends without a slash); a file's URL is ``base_url/remote_name``.
        names: our file name -> the file name at the mirror, where they differ.
    """

    name: str
    base_url: str
    names: Mapping[str, str] = field(default_factory=dict)

    def url(self, filename: str) -> str:
        """The URL of ``filename`` (one of :data:`FILES`) at this mirror."""
        return f"{self.base_url.rstrip('/')}/{self.names.get(filename, filename)}"


_RAW = "https://raw.githubusercontent.com"

#: The original challenge TIFFs in public repositories, at pinned commits (see PROVENANCE.md of the data:
#: both repositories hold the same git blobs). Tried in order.
MIRRORS: tuple[Mirror, ...] = (
    Mirror("zhixuhao/unet@4b939a4", f"{_RAW}/zhixuhao/unet/4b939a4dbd930eeaf3d6fffcb514860cb11c948d/data"),
    Mirror(
        "hansbu/CSE527_FinalProject@99af3a0",
        f"{_RAW}/hansbu/CSE527_FinalProject/99af3a01c66e81461324f223d66c6ab37c332fde/data/raw",
        {"train-labels.tif": "label-volume.tif"},
    ),
)


@dataclass(frozen=True)
class IsbiData:
    """The three ISBI 2012 volumes, uint8, 30 x 512 x 512 each."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    root: Path


def cache_dir() -> Path:
    """The per-user cache folder where downloads go (the operating system's, from ``pooch.os_cache``)."""
    import pooch

    return Path(pooch.os_cache("unet-repro")) / "isbi2012"


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$UNET_REPRO_DATA``, else :func:`cache_dir`."""
    if root:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return cache_dir()


def pixel_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's pixel bytes in C order (independent of the TIFF writer)."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def read_stack(path: Path, expected_sha256: str | None = None) -> np.ndarray:
    """Read one multi-page TIFF and verify its pixels.

    Raises:
        DataError: the file cannot be decoded, has the wrong shape or dtype, or its pixel checksum
            differs from ``expected_sha256``.
    """
    import tifffile

    want = f" (expected pixel SHA-256 {expected_sha256})" if expected_sha256 else ""
    try:
        arr = tifffile.imread(path)
    except Exception as exc:  # tifffile raises several types for damaged files
        raise CorruptFileError(
            f"{path} is not a readable TIFF ({type(exc).__name__}: {exc}){want}; "
            "delete it and load again to re-download"
        ) from exc
    if arr.shape != SHAPE or arr.dtype != np.uint8:
        raise CorruptFileError(
            f"{path} holds {arr.dtype} {arr.shape}, expected uint8 {SHAPE}{want}: not the ISBI 2012 stack; "
            "delete it and load again to re-download"
        )
    if expected_sha256 is not None:
        got = pixel_sha256(arr)
        if got != expected_sha256:
            raise ChecksumError(
                f"{path}: pixel checksum {got} differs from the expected {expected_sha256}; "
                "the file is damaged or a different data set. Delete it and load again to re-download."
            )
    return arr


def download_file(
    url: str, dest: Path, expected_sha256: str, timeout: float = 60.0, progress: bool = False
) -> np.ndarray:
    """Download ``url`` to ``dest`` with pooch and verify its pixels; ``dest`` appears only when they match.

    The bytes go to ``dest.part`` first and are renamed after verification, so an interrupted or wrong
    download never leaves a file that a later load would take for the data.

    Args:
        url: where to fetch (http or https URL).
        dest: final path, e.g. ``<root>/train-volume.tif``.
        expected_sha256: the pixel checksum from :data:`FILES`.
        timeout: seconds to wait for the server.
        progress: a progress bar while the bytes arrive.

    Returns:
        The verified 30 x 512 x 512 uint8 array.

    Raises:
        DataError: the server cannot be reached or answers with an error.
        CorruptFileError: the download is not the 30 x 512 x 512 uint8 stack.
        ChecksumError: the download decodes but its pixels differ from ``expected_sha256``.
    """
    import pooch

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    part.unlink(missing_ok=True)  # pooch would take a leftover for the download
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # not pooch's advice to pin the byte hash: the pixels are what is checked
    try:
        pooch.retrieve(
            url,
            known_hash=None,  # the pixel checksum below decides (the files' byte hashes are not known)
            fname=part.name,
            path=part.parent,
            downloader=pooch.HTTPDownloader(timeout=timeout, progressbar=progress),
        )
    except Exception as exc:  # noqa: BLE001 - requests and pooch raise many types for a failed download
        part.unlink(missing_ok=True)
        raise DataError(f"cannot download {url} for {dest.name}: {exc}") from exc
    finally:
        logger.setLevel(level)
    try:
        arr = read_stack(part, expected_sha256)
    except DataError as exc:
        part.unlink(missing_ok=True)
        raise type(exc)(f"{dest.name} from {url}: {exc}") from exc
    os.replace(part, dest)
    return arr


def _manual_instructions(folder: Path, names: Sequence[str]) -> str:
    lines = [f"Download them by hand and put each file in {folder} (or point ${ENV_VAR} at a folder that holds them):"]
    for name in names:
        urls = ", ".join(m.url(name) for m in MIRRORS)
        lines.append(f"  {folder / name}  <- one of {urls}  (pixel SHA-256 {FILES[name]})")
    lines.append(
        "The files are the ISBI 2012 challenge data (brainiac2.mit.edu/isbi_challenge, now closed); any copy "
        "whose decoded pixels have these SHA-256 sums is accepted, whatever program wrote the TIFF."
    )
    return "\n".join(lines)


def download_isbi2012(
    root: str | os.PathLike | None = None,
    mirrors: Sequence[Mirror] | None = None,
    names: Sequence[str] | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Fetch the missing ISBI 2012 files into ``root``, trying each mirror in turn, and verify them.

    Args:
        root: target folder (resolved as in :func:`resolve_root`).
        mirrors: where to look (default :data:`MIRRORS`); tests pass a local HTTP server.
        names: which files (default: those of :data:`FILES` missing in ``root``).
        timeout: seconds to wait for each server.
        progress: print one line per file fetched.

    Returns:
        The folder, now holding verified copies of ``names``.

    Raises:
        DownloadError: some file could not be fetched and verified from any mirror; the message gives each
            mirror's reason and says where to put which file by hand.
    """
    folder = resolve_root(root)
    mirrors = tuple(MIRRORS if mirrors is None else mirrors)
    if names is None:
        names = [n for n in FILES if not (folder / n).is_file()]
    unknown = [n for n in names if n not in FILES]
    if unknown:
        raise ValueError(f"unknown ISBI 2012 file(s) {unknown}; choose from {list(FILES)}")
    failures: dict[str, list[str]] = {}
    for name in names:
        reasons: list[str] = []
        for mirror in mirrors:
            url = mirror.url(name)
            try:
                download_file(url, folder / name, FILES[name], timeout=timeout, progress=progress)
            except DataError as exc:
                reasons.append(f"{mirror.name}: {type(exc).__name__}: {exc}")
                continue
            if progress:
                print(f"downloaded {name} from {mirror.name}, pixel checksum verified")
            break
        else:
            failures[name] = reasons or ["no mirror given"]
    if failures:
        report = "\n".join(f"{n}:\n    " + "\n    ".join(r) for n, r in failures.items())
        raise DownloadError(
            f"could not download the ISBI 2012 data into {folder}.\n{report}\n"
            + _manual_instructions(folder, list(failures))
        )
    return folder


def load_isbi2012(
    root: str | os.PathLike | None = None,
    download: bool = True,
    mirrors: Sequence[Mirror] | None = None,
) -> IsbiData:
    """Load (and verify) the ISBI 2012 training stack, its labels and the test stack.

    Args:
        root: folder holding ``train-volume.tif``, ``train-labels.tif`` and ``test-volume.tif``;
            ``None`` resolves as described in the module docstring.
        download: fetch missing files from ``mirrors`` (default :data:`MIRRORS`) into that folder.
        mirrors: where to download from.

    Returns:
        :class:`IsbiData` with uint8 arrays of shape 30 x 512 x 512 (labels: 0 membrane, 255 cell).

    Raises:
        DataError: files missing (and ``download=False``), damaged, different, or not downloadable;
            the message says which file and what to do.
    """
    folder = resolve_root(root)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing and download:
        download_isbi2012(folder, mirrors=mirrors, names=missing)
    elif missing:
        raise DataError(
            f"ISBI 2012 files missing in {folder}: {', '.join(missing)}. Put them there, point "
            f"${ENV_VAR} at a folder holding them, pass root=..., or load with download=True.\n"
            + _manual_instructions(folder, missing)
        )
    arrays = {name: read_stack(folder / name, sha) for name, sha in FILES.items()}
    return IsbiData(
        train_images=arrays["train-volume.tif"],
        train_labels=arrays["train-labels.tif"],
        test_images=arrays["test-volume.tif"],
        root=folder,
    )


def split_train_heldout(n_slices: int = 30, heldout: tuple[int, int] = (25, 30)) -> tuple[list[int], list[int]]:
    """The evaluation protocol: slices ``heldout[0]..heldout[1]-1`` held out, the rest for training.

    The challenge never published test labels, so held-out numbers come from the training stack;
    a contiguous block is held out because neighbouring sections are nearly identical.
    """
    lo, hi = heldout
    if not (0 <= lo < hi <= n_slices):
        raise ValueError(f"held-out block {heldout} must lie within 0..{n_slices}")
    held = list(range(lo, hi))
    return [i for i in range(n_slices) if i not in held], held


def normalize_image(image: np.ndarray) -> np.ndarray:
    """uint8 grey values -> float32 in [0, 1], the input scaling of training and inference.

    The paper does not say how it scales the grey values; dividing by 255 is ours.

    Args:
        image: any array of grey values 0..255.

    Returns:
        ``image / 255`` as float32.
    """
    return np.asarray(image, dtype=np.float32) / np.float32(255.0)
