"""MiniLM's forward pass for inference, written out over the model's own modules.

transformers' BertModel spends about 0.8 ms of Python per call around the same operations (mask
building, output classes, the pooler nobody here reads), and the moderation check makes eleven calls
for a 200-word-piece request. This pass calls the same embedding, Linear (int8, bf16 or float32) and
LayerNorm modules and the same attention kernel in the same order, so its vectors are bit-identical
to `embed_batch`'s (a test checks it for every kind of encoder and for padded batches); training keeps
`embed_batch`, which applies dropout when the model trains.
"""

from __future__ import annotations

from typing import Any


def inference_vectors(model: Any, ids: Any, mask: Any) -> Any:
    """Unit-length mean-pooled vectors (a torch tensor) of a padded batch: `embed_batch` without dropout."""
    import torch
    import torch.nn.functional as F

    x = model.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids))
    batch, length = ids.shape
    # transformers passes no mask when nothing is padded, and a boolean one (True: attend) when it is
    attend = None if bool(mask.all()) else mask[:, None, None, :].bool().expand(batch, 1, length, length)
    for layer in model.encoder.layer:
        own = layer.attention.self
        heads, size = own.num_attention_heads, own.attention_head_size
        q, k, v = (proj(x).view(batch, length, heads, size).transpose(1, 2) for proj in (own.query, own.key, own.value))
        mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=attend, scale=own.scaling)
        mixed = mixed.transpose(1, 2).contiguous().reshape(batch, length, heads * size)
        out = layer.attention.output
        x = out.LayerNorm(out.dense(mixed) + x)
        inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(x))
        x = layer.output.LayerNorm(layer.output.dense(inner) + x)
    weights = mask.unsqueeze(-1).to(x.dtype)
    pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return F.normalize(pooled, p=2, dim=1)
