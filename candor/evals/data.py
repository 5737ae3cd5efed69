"""Where evaluation data comes from: a configured folder, or a download from each set's public home.

The folder is, in order: the `--data-dir` option, the `CANDOR_DATA_DIR` setting, `../shared/data`
next to the repository (development and CI), then `$CANDOR_HOME/data` (where `candor eval
--download` puts what it fetches). Each set lives in a sub-folder named like the set, with the
files its upstream publishes (see SETS); a file may also be stored gzipped (`name.gz`) or
unzipped. Nothing here is ever copied into the repository; tests use small fixtures of their own.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import tarfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from candor.config import env, settings
from candor.errors import CandorError

REPO_ROOT = Path(__file__).resolve().parents[2]
_RAW = "https://raw.githubusercontent.com"
BBQ_CATEGORIES = ("Age", "Disability_status", "Gender_identity", "Nationality", "Physical_appearance",
                  "Race_ethnicity", "Race_x_SES", "Race_x_gender", "Religion", "SES", "Sexual_orientation")


class DataNotFoundError(CandorError):
    """A data set is not in the data folder."""


@dataclass(frozen=True)
class DataSet:
    """A public data set: its home, license, and where each file can be downloaded from."""

    home: str
    license: str
    files: dict[str, str] = field(default_factory=dict)  # relative path here -> download URL
    sha256: dict[str, str] = field(default_factory=dict)  # relative path -> checksum of the download
    archive: str = ""  # a tarball to unpack instead of single files (MMLU)


SETS: dict[str, DataSet] = {
    "gsm8k": DataSet(
        "https://github.com/openai/grade-school-math", "MIT",
        {"test.jsonl": f"{_RAW}/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c/"
                       "grade_school_math/data/test.jsonl"},
        {"test.jsonl": "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14"}),
    "humaneval": DataSet(
        "https://github.com/openai/human-eval", "MIT",
        {"HumanEval.jsonl.gz": f"{_RAW}/openai/human-eval/6d43fb980f9fee3c892a914eda09951f772ad10d/"
                               "data/HumanEval.jsonl.gz"},
        {"HumanEval.jsonl.gz": "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef"}),
    "mmlu": DataSet("https://github.com/hendrycks/test", "MIT",
                    archive="https://people.eecs.berkeley.edu/~hendrycks/data.tar"),
    "truthfulqa": DataSet(
        "https://github.com/sylinrl/TruthfulQA", "Apache-2.0",
        {"mc_task.json": f"{_RAW}/sylinrl/TruthfulQA/main/data/mc_task.json"}),
    "bbq": DataSet(
        "https://github.com/nyu-mll/BBQ", "CC-BY-4.0",
        {f"{c}.jsonl": f"{_RAW}/nyu-mll/BBQ/bea11bd97d79217245b5871acd247b9d6eb24598/data/{c}.jsonl"
         for c in BBQ_CATEGORIES}),
    "advbench": DataSet(
        "https://github.com/llm-attacks/llm-attacks", "MIT",
        {"harmful_behaviors.csv": f"{_RAW}/llm-attacks/llm-attacks/098262edf85f807224e70ecd87b9d83716bf6b73/"
                                  "data/advbench/harmful_behaviors.csv"},
        {"harmful_behaviors.csv": "6cd1a5c63c07610d7eb67307772ee5606017ee950b5770ab288a2c487489d3e1"}),
    "harmbench": DataSet(
        "https://github.com/centerforaisafety/HarmBench", "MIT",
        {"harmbench_behaviors_text_all.csv": f"{_RAW}/centerforaisafety/HarmBench/main/data/behavior_datasets/"
                                             "harmbench_behaviors_text_all.csv"}),
    "hh-rlhf": DataSet(  # helpful-base is stored in Git LFS upstream: GitHub's media host serves its bytes
        "https://github.com/anthropics/hh-rlhf", "MIT",
        {f"{part}/test.jsonl.gz": f"{host}/anthropics/hh-rlhf/354e5c3cb8960630860dd5774a6ac2a58313bf4d/{part}/test.jsonl.gz"
         for part, host in (("harmless-base", _RAW), ("helpful-base", "https://media.githubusercontent.com/media"))},
        {"harmless-base/test.jsonl.gz": "ebfaaed21162a4de120ae85366075b34425e2a6303fac59b99555002f7016f03",
         "helpful-base/test.jsonl.gz": "8be3fc1a13b27901631696f2be6f184c799f1baeaf145f53ac5db24960adc37b"}),
    "xstest": DataSet(
        "https://github.com/paul-rottger/exaggerated-safety", "CC-BY-4.0",
        {"xstest_prompts.csv": f"{_RAW}/paul-rottger/exaggerated-safety/d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d/"
                               "xstest_prompts.csv"},
        {"xstest_prompts.csv": "11783fb294ed017473ee53c207d71f2161c7672c8d0b037501e78387f801cb5a"}),
}


def cache_dir() -> Path:
    return settings().home / "data"


def data_roots(explicit: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched, first match wins."""
    if explicit:
        return [Path(explicit).expanduser()]
    roots = []
    chosen = env("CANDOR_DATA_DIR")
    if chosen:
        roots.append(Path(chosen).expanduser())
    shared = REPO_ROOT.parent / "shared" / "data"
    if shared.is_dir():
        roots.append(shared)
    roots.append(cache_dir())
    return roots


class Data:
    """Files of the data sets, found under the data roots."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.roots = data_roots(root)

    def describe(self) -> str:
        return str(self.roots[0]) if len(self.roots) == 1 else " or ".join(str(r) for r in self.roots)

    def find(self, set_name: str, relpath: str) -> Path:
        """`set_name/relpath`, accepting a gzipped or an unzipped copy."""
        variants = [relpath, relpath + ".gz"] + ([relpath[:-3]] if relpath.endswith(".gz") else [])
        for root in self.roots:
            for variant in variants:
                path = root / set_name / variant
                if path.is_file():
                    return path
        raise DataNotFoundError(
            f"{set_name}: {relpath} not found in {self.describe()}; set CANDOR_DATA_DIR (or --data-dir) to a "
            f"folder holding {set_name}/{relpath}, or fetch it from {SETS[set_name].home if set_name in SETS else '?'}"
            f" with `candor eval --download {set_name}`")

    def glob(self, set_name: str, pattern: str) -> list[Path]:
        for root in self.roots:
            found = sorted((root / set_name).glob(pattern))
            if found:
                return found
        return []

    def source(self, path: Path) -> str:
        """A path as `set/file` for records (no machine-specific prefix)."""
        for root in self.roots:
            try:
                return str(path.relative_to(root))
            except ValueError:
                continue
        return path.name

    # -- readers ------------------------------------------------------------------------------
    def text(self, set_name: str, relpath: str) -> str:
        return read_text(self.find(set_name, relpath))

    def jsonl(self, set_name: str, relpath: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text(set_name, relpath).splitlines() if line.strip()]

    def csv(self, set_name: str, relpath: str) -> list[dict[str, str]]:
        return read_csv(self.find(set_name, relpath))


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8-sig")


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file with a header (cells may hold newlines)."""
    return list(csv.DictReader(io.StringIO(read_text(path), newline="")))


def read_rows(path: Path) -> Iterator[list[str]]:
    yield from csv.reader(io.StringIO(read_text(path), newline=""))


# -- download ---------------------------------------------------------------------------------
def download(set_name: str, dest: Path | None = None, log=print) -> Path:
    """Fetch a set from its public home into the cache (or `dest`), checking known checksums."""
    if set_name not in SETS:
        raise DataNotFoundError(f"unknown data set {set_name!r}; known: {', '.join(SETS)}")
    spec = SETS[set_name]
    folder = (dest or cache_dir()) / set_name
    folder.mkdir(parents=True, exist_ok=True)
    for relpath, url in spec.files.items():
        target = folder / relpath
        if target.exists():
            continue
        log(f"downloading {url}")
        body = _fetch(url)
        want = spec.sha256.get(relpath)
        if want and hashlib.sha256(body).hexdigest() != want:
            raise CandorError(f"{url}: sha256 {hashlib.sha256(body).hexdigest()} differs from the expected {want}")
        target.write_bytes(body)
    if spec.archive and not (folder / "test").is_dir():
        log(f"downloading {spec.archive}")
        with tarfile.open(fileobj=io.BytesIO(_fetch(spec.archive))) as tar:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if member.isfile() and len(parts) >= 3 and parts[-2] in ("test", "dev") and parts[-1].endswith(".csv"):
                    out = folder / parts[-2] / parts[-1]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    (folder / "SOURCE.md").write_text(f"Downloaded from {spec.home} ({spec.license}).\n")
    return folder


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()
