"""LoRA training for the embedded model: `sft`, `dpo`, `export` (to GGUF, registered by name),
`samples` (fixed before/after answers) and the helpers they share (`common`). Torch, transformers,
TRL and PEFT are imported only inside the functions that train (the `train` extra)."""
