"""bfloat16 matrix products for the sentence encoder, on CPUs that have bf16 instructions.

MiniLM's time goes mostly to its Linear layers. On a CPU with AMX or AVX512-BF16, torch (oneDNN)
multiplies bf16 matrices about three times as fast as float32 ones; keeping only those products in
bf16 (the residual stream, layer norms, attention and pooling stay float32) halved the encoder's
time for a 200-word-piece request on this project's 2-core Xeon (32 -> 16 ms on one thread) and
moved its vectors by a cosine of 2e-5. Converting the whole model to bf16 was a little faster
(13 ms) but moved them by 3e-3, enough to move moderation scores near a threshold. On a CPU without
those instructions bf16 products are emulated and slower: `cpu_has_bf16` says which.
"""

from __future__ import annotations

import torch


class BF16Linear(torch.nn.Module):
    """A Linear layer holding bf16 weights: its input is rounded to bf16 for the product and the
    result returned in the input's dtype."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = torch.nn.Parameter(linear.weight.detach().to(torch.bfloat16), requires_grad=False)
        self.bias = (None if linear.bias is None else
                     torch.nn.Parameter(linear.bias.detach().to(torch.bfloat16), requires_grad=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x.to(torch.bfloat16), self.weight, self.bias).to(x.dtype)


def bf16_linears(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with every torch.nn.Linear replaced by a BF16Linear (in place; for inference)."""
    for name, child in model.named_children():
        if isinstance(child, torch.nn.Linear):
            setattr(model, name, BF16Linear(child))
        else:
            bf16_linears(child)
    return model


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX tiles or AVX512-BF16)."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch.cpu's own checks
    return any(bool(getattr(torch.cpu, probe, lambda: False)()) for probe in probes)
