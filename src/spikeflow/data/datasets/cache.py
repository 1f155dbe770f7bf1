"""The dataset cache: one folder per dataset build, a manifest with sha256 checksums.

Location: ``$SPIKEFLOW_CACHE`` if set, else platformdirs' user cache dir for
``spikeflow``; ``cache_dir=`` overrides both. A build writes its files into a
temporary folder and renames it into place, so an interrupted build leaves nothing
half-made; a folder whose files do not match the manifest is deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Callable

from spikeflow.atomic import fsync_dir, make_dirs, make_temp_dir, sync_tree
from spikeflow.errors import DataFormatError

MANIFEST = "manifest.json"


def cache_root(cache_dir=None) -> Path:
    """The dataset cache folder: ``cache_dir``, else ``$SPIKEFLOW_CACHE``, else the user cache dir ``spikeflow``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("SPIKEFLOW_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("spikeflow"))


def sha256_file(path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def verify(folder: Path) -> dict | None:
    """The manifest if every listed file exists with its checksum, else None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
        for name, digest in files.items():
            if sha256_file(folder / name) != digest:
                return None
        return manifest
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_cached(key: str, cache_dir=None) -> bool:
    """Whether the dataset build ``key`` (a ``DATASETS[name]["cache_key"]``) is complete in the cache."""
    return (cache_root(cache_dir) / key / MANIFEST).exists()


def ensure(key: str, build: Callable[[Path], dict], cache_dir=None) -> tuple[Path, dict]:
    """The verified folder ``<root>/<key>``, built by ``build(tmp_folder) -> info`` when missing or corrupt.

    ``build`` writes its files into the folder it is given and returns extra manifest fields.
    """
    root = cache_root(cache_dir)
    folder = root / key
    if folder.exists():
        manifest = verify(folder)
        if manifest is not None:
            return folder, manifest
        warnings.warn(f"spikeflow: cache {folder} is incomplete or corrupt (checksum mismatch); "
                      f"rebuilding", stacklevel=3)
        shutil.rmtree(folder, ignore_errors=True)
    make_dirs(root)
    tmp = make_temp_dir(root, f".{key}.")
    try:
        t0 = time.perf_counter()
        info = build(tmp) or {}
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = {"key": key, "files": files, "build_seconds": round(time.perf_counter() - t0, 3),
                    "bytes": sum((tmp / n).stat().st_size for n in files), **info}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        sync_tree(tmp)
        try:
            os.replace(tmp, folder)
            fsync_dir(root)
        except OSError:  # another process finished first
            if verify(folder) is None:
                raise DataFormatError(f"{folder}: cannot install the cache folder") from None
            shutil.rmtree(tmp, ignore_errors=True)
            manifest = verify(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder, manifest
