"""LoRA adapter (PEFT folder) → GGUF adapter that llama.cpp serves, registered by name.

llama.cpp's converter (`convert_lora_to_gguf.py`, which imports the repository's `conversion/`
modules and `gguf-py`) ships inside the llama-cpp-python *source* package. It is fetched with
`pip download --no-binary :all:` into `$CANDOR_HOME/cache/` the first time and never committed.
The converter needs the base model's Hugging Face config (the cached folder `candor train`
converted from the GGUF), not its weights.

Registration writes a `[models.NAME]` table with the base's `weights` and the new `adapter` to a
registry override file (`--models-file`, else `$CANDOR_MODELS_FILE`, else
`$CANDOR_HOME/models.toml`), so `CANDOR_MODELS_FILE=that candor serve` serves the model by name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from candor.config import env, settings
from candor.errors import CandorError, InvalidRequestError
from candor.settings_fields import opt
from candor.train.common import resolve_base

LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"  # the version the engine runs; its sdist vendors llama.cpp
_KEEP = re.compile(r"^[^/]+/vendor/llama\.cpp/(convert_lora_to_gguf\.py|convert_hf_to_gguf\.py|conversion/|gguf-py/)")


@dataclass
class ExportSettings:
    adapter: str = opt("", "The PEFT adapter folder written by `candor train sft|dpo`.")
    out: str = opt("", "The GGUF file to write (default: ADAPTER/adapter.gguf).")
    base: str = opt("candor-instant", "Registry name of the base model the adapter was trained on.")
    name: str = opt("", "Register the adapter under this model name (empty: do not register).")
    models_file: str = opt("", "Registry file to write the entry to (default: $CANDOR_MODELS_FILE, "
                               "else $CANDOR_HOME/models.toml).")
    description: str = opt("", "Description for the registry entry.")
    outtype: str = opt("f16", "Tensor type of the GGUF adapter: f32, f16, bf16 or q8_0.")


def converter_dir(log=print) -> Path:
    """The llama.cpp tree holding convert_lora_to_gguf.py, fetched from the sdist once."""
    cache = settings().home / "cache" / "llama-cpp-python-src"
    tree = cache / "llama.cpp"
    if (tree / "convert_lora_to_gguf.py").is_file():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    sdists = sorted(cache.glob("llama_cpp_python-*.tar.gz"))
    if not sdists:
        log(f"fetching the {LLAMA_CPP_PYTHON} source package for llama.cpp's LoRA converter")
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                               "-d", str(cache), LLAMA_CPP_PYTHON], capture_output=True, text=True, check=False)
        sdists = sorted(cache.glob("llama_cpp_python-*.tar.gz"))
        if done.returncode != 0 or not sdists:
            raise CandorError(f"could not download {LLAMA_CPP_PYTHON} sources: {done.stderr.strip()[-400:]}")
    partial = cache / f"llama.cpp.part-{os.getpid()}"
    with tarfile.open(sdists[-1]) as tar:
        for member in tar.getmembers():
            if member.isfile() and _KEEP.match(member.name):
                rel = member.name.split("/vendor/llama.cpp/", 1)[1]
                target = partial / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    if not (partial / "convert_lora_to_gguf.py").is_file():
        raise CandorError(f"{sdists[-1]} has no vendor/llama.cpp/convert_lora_to_gguf.py")
    if tree.exists():
        shutil.rmtree(tree)
    partial.rename(tree)
    return tree


def convert_adapter(adapter_dir: Path, out: Path, base_dir: Path, outtype: str = "f16", log=print) -> Path:
    if not (adapter_dir / "adapter_config.json").is_file():
        raise InvalidRequestError(f"{adapter_dir} has no adapter_config.json (not a PEFT adapter folder)",
                                  field="adapter")
    if outtype not in ("f32", "f16", "bf16", "q8_0"):
        raise InvalidRequestError(f"must be f32, f16, bf16 or q8_0, got {outtype!r}", field="outtype")
    tree = converter_dir(log)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(tree / "convert_lora_to_gguf.py"), "--base", str(base_dir), "--outtype", outtype,
           "--outfile", str(out), str(adapter_dir)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=str(tree), check=False)
    if done.returncode != 0 or not out.is_file():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise CandorError(f"convert_lora_to_gguf.py failed (exit {done.returncode}):\n{tail}")
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s")
    return out


def models_file_path(explicit: str = "") -> Path:
    chosen = explicit or env("CANDOR_MODELS_FILE") or str(settings().home / "models.toml")
    return Path(chosen).expanduser()


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def register(name: str, adapter_gguf: Path, models_file: Path, base: str = "candor-instant",
             description: str = "") -> Path:
    """Add or replace `[models.NAME]` in `models_file`: the base entry's weights and limits plus
    the adapter. Other tables in the file are left as they are."""
    from candor.registry import load_registry

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
        raise InvalidRequestError(f"model names are letters, digits, '.', '_', '+', '-'; got {name!r}", field="name")
    base_entry = load_registry().get(base)
    fields = {
        "description": description or f"{base} with the LoRA adapter {adapter_gguf.name}",
        "engine": "embedded", "weights": base_entry.weights, "adapter": str(adapter_gguf.resolve()),
        "prompt_format": base_entry.prompt_format, "context_window": base_entry.context_window,
        "max_output_tokens": base_entry.max_output_tokens,
        "price_input_per_mtok": base_entry.price_input_per_mtok,
        "price_output_per_mtok": base_entry.price_output_per_mtok,
        # The adapter learned on prompts rendered with the base's system prompt: serve it the same way.
        **({"system_prompt": base_entry.system_prompt} if base_entry.system_prompt else {}),
        **({"sha256": base_entry.sha256} if base_entry.sha256 else {}),
    }
    table = f'[models."{name}"]\n' + "".join(f"{k} = {_toml_value(v)}\n" for k, v in fields.items())
    text = models_file.read_text(encoding="utf-8") if models_file.is_file() else ""
    pattern = re.compile(r'^\[models\.(?:"' + re.escape(name) + r'"|' + re.escape(name) + r')\]\n(?:(?!\[).*\n?)*',
                         re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: table + "\n", text, count=1)
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + table
    models_file.parent.mkdir(parents=True, exist_ok=True)
    models_file.write_text(text, encoding="utf-8")
    load_registry(models_file).get(name)  # the file must still load, with the new entry in it
    return models_file


def export(cfg: ExportSettings, log=print) -> dict:
    adapter_dir = Path(cfg.adapter).expanduser().resolve()  # the converter runs in its own folder
    if not cfg.adapter or not adapter_dir.is_dir():
        raise InvalidRequestError(f"adapter folder {adapter_dir} does not exist", field="adapter")
    out = (Path(cfg.out).expanduser() if cfg.out else adapter_dir / "adapter.gguf").resolve()
    base_dir = resolve_base(cfg.base, log)
    convert_adapter(adapter_dir, out, base_dir, cfg.outtype, log)
    result = {"gguf": str(out), "bytes": out.stat().st_size}
    if cfg.name:
        file = models_file_path(cfg.models_file)
        register(cfg.name, out, file, cfg.base, cfg.description)
        result.update(name=cfg.name, models_file=str(file))
        hint = "" if env("CANDOR_MODELS_FILE") == str(file) else f"CANDOR_MODELS_FILE={file} "
        log(f"registered {cfg.name} in {file}; serve it with: {hint}candor serve (model {cfg.name!r})")
    return result
