"""Where dataset files are searched, the user cache directory, and the download into it.

Search order for a dataset ``name`` in ("mnist", "fashion_mnist", "cifar10"):

1. an explicit ``path`` argument (then ONLY that path is used);
2. the dataset's environment variable (EARLYPHASE_MNIST, EARLYPHASE_FASHION_MNIST,
   EARLYPHASE_CIFAR10): a directory or a file;
3. $EARLYPHASE_DATA/<name> (and the hyphenated spelling, e.g. $EARLYPHASE_DATA/fashion-mnist);
4. system copies: Debian's /usr/share/datasets/fashion-mnist (package dataset-fashion-mnist);
5. the user cache directory ``cache_root()/<name>``: $XDG_CACHE_HOME/earlyphase/<name>, else
   ~/.cache/earlyphase/<name>; where nothing was found, the official files are downloaded here
   (only where a network exists; ``download=False`` turns this off).

Every downloaded file must match its pinned sha256 before it is moved into place: a mismatch
deletes the download and tries the next mirror, and a file with no pinned digest is never
fetched. (Files found on disk in steps 1-4 are the user's and are not checksummed: Debian's
Fashion-MNIST, for one, is recompressed and differs byte-wise from the upstream archives.)
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from earlyphase.empirical.data.errors import DatasetNotFoundError

ENV_VARS = {
    "mnist": "EARLYPHASE_MNIST",
    "fashion_mnist": "EARLYPHASE_FASHION_MNIST",
    "cifar10": "EARLYPHASE_CIFAR10",
}
GENERAL_ENV_VAR = "EARLYPHASE_DATA"
SYSTEM_DIRS = {"fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"),)}
DOWNLOAD_TIMEOUT_S = 30.0

Found = TypeVar("Found")


def cache_root() -> Path:
    """$XDG_CACHE_HOME/earlyphase if XDG_CACHE_HOME is set, else ~/.cache/earlyphase."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "earlyphase"


def candidate_paths(name: str, path: str | os.PathLike | None) -> list[Path]:
    """The places searched for ``name``, in order (see the module docstring)."""
    if path is not None:
        return [Path(path).expanduser()]
    places: list[Path] = []
    if os.environ.get(ENV_VARS[name]):
        places.append(Path(os.environ[ENV_VARS[name]]).expanduser())
    if os.environ.get(GENERAL_ENV_VAR):
        general = Path(os.environ[GENERAL_ENV_VAR]).expanduser()
        places += [general / spelling for spelling in dict.fromkeys((name, name.replace("_", "-")))]
    places += list(SYSTEM_DIRS.get(name, ()))
    places.append(cache_root() / name)
    return places


def locate(
    name: str,
    path: str | os.PathLike | None,
    probe: Callable[[Path], Found | None],
    urls: Mapping[str, Sequence[str]],
    download: bool,
    expected: str,
    sha256: Mapping[str, str],
) -> Found:
    """Return ``probe(place)`` for the first searched place where it is not None.

    ``probe`` returns None where a place holds no copy of the dataset (and raises DataFileError
    where it holds a broken one). With no copy anywhere and ``download`` true, the files ``urls``
    (file name -> mirror URLs) are downloaded into the cache directory, each checked against
    ``sha256`` (file name -> hex digest), and probed there. Failing
    that, DatasetNotFoundError lists every place searched and ``expected`` (what a copy looks like).
    """
    places = candidate_paths(name, path)
    for place in places:
        if place.exists():
            found = probe(place)
            if found is not None:
                return found
    searched = "\n".join(f"  - {place}{'' if place.exists() else ' (does not exist)'}" for place in places)
    hint = (
        f"pass path=..., or set {ENV_VARS[name]} or {GENERAL_ENV_VAR} (see docs/DATA.md)"
        if path is None
        else "check the path"
    )
    if path is None and download:
        target = cache_root() / name
        try:
            download_files(urls, target, sha256)
        except OSError as error:
            raise DatasetNotFoundError(
                f"dataset {name!r} not found; looked in:\n{searched}\nexpected {expected}.\n"
                f"Downloading into {target} failed ({error}); {hint}."
            ) from error
        found = probe(target)
        if found is not None:
            return found
    raise DatasetNotFoundError(f"dataset {name!r} not found; looked in:\n{searched}\nexpected {expected}; {hint}.")


def download_files(urls: Mapping[str, Sequence[str]], target: Path, sha256: Mapping[str, str]) -> None:
    """Download each file name from its first working mirror whose bytes match ``sha256[name]``
    into ``target`` (atomic; a mismatching download is deleted; OSError when no mirror gives
    the pinned file, ValueError for a file with no pinned digest)."""
    unpinned = sorted(set(urls) - set(sha256))
    if unpinned:
        raise ValueError(f"no pinned sha256 for {unpinned}: refusing to download an unverifiable file")
    target.mkdir(parents=True, exist_ok=True)
    for file_name, mirrors in urls.items():
        destination = target / file_name
        if destination.exists():
            continue
        errors = []
        for url in mirrors:
            partial = destination.with_name(f"{destination.name}.{os.getpid()}.part")  # per process
            try:
                digest = hashlib.sha256()
                with (
                    urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
                    open(partial, "wb") as out,
                ):
                    while chunk := response.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
                if digest.hexdigest() != sha256[file_name].lower():
                    raise OSError(
                        f"sha256 mismatch: got {digest.hexdigest()}, pinned {sha256[file_name].lower()} "
                        "(download deleted)"
                    )
                os.replace(partial, destination)
                break
            except OSError as error:  # URLError, HTTPError, timeouts and a wrong digest
                partial.unlink(missing_ok=True)
                errors.append(f"{url}: {error}")
        else:
            raise OSError("; ".join(errors))
