"""Grammar-constrained sampling that checks the grammar only when it has to.

llama-cpp-python runs the grammar over every candidate token before sampling: with the embedded
model's 262,144-token vocabulary that costs more per token than the model's own forward pass.
Here the token is sampled first, as if unconstrained, and the grammar is asked about that one
token; only when it refuses is the grammar applied to the whole vocabulary and the token sampled
again from what it allows. Which token comes out is the same as filtering first (the unconstrained
choice is kept exactly when the grammar allows it; otherwise the choice is made among the allowed
tokens with the same sampler chain), as in llama.cpp's own `common_sampler`.
"""

from __future__ import annotations

import ctypes
import math

import numpy as np

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)


class ConstrainedSampler:
    """One generation's sampler: the plain chain (temperature, top-k/top-p, seed) plus a grammar."""

    def __init__(self, lib, vocab, n_vocab: int, chain, grammar: str):
        self._lib = lib
        self._chain = chain  # a llama_sampler chain pointer, without a grammar
        self._n_vocab = n_vocab
        self._grammar = lib.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
        if not self._grammar:
            raise ValueError("llama.cpp could not parse the grammar")
        self.full_passes = 0  # how often the whole vocabulary had to be filtered (for benchmarks)

    def sample(self, ctx, index: int = -1) -> int:
        """Sample the next token from the logits at batch `index` and advance the grammar."""
        lib = self._lib
        token = lib.llama_sampler_sample(self._chain, ctx, index)
        if self._allows(token):
            lib.llama_sampler_accept(self._grammar, token)
            return token
        self.full_passes += 1
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, index), shape=(self._n_vocab,))
        data = np.empty(self._n_vocab, dtype=_TOKEN_DATA)
        data["id"] = np.arange(self._n_vocab, dtype=np.int32)
        data["logit"] = logits
        data["p"] = 0.0
        array = lib.llama_token_data_array(data.ctypes.data_as(ctypes.POINTER(lib.llama_token_data)),
                                           self._n_vocab, -1, False)
        lib.llama_sampler_apply(self._grammar, ctypes.byref(array))
        lib.llama_sampler_apply(self._chain, ctypes.byref(array))
        if array.selected < 0:
            raise RuntimeError("the sampler chain selected no token")
        token = int(array.data[array.selected].id)
        lib.llama_sampler_accept(self._grammar, token)
        return token

    def _allows(self, token: int) -> bool:
        lib = self._lib
        one = (lib.llama_token_data * 1)(lib.llama_token_data(token, 0.0, 0.0))
        array = lib.llama_token_data_array(one, 1, -1, False)
        lib.llama_sampler_apply(self._grammar, ctypes.byref(array))
        return not math.isinf(one[0].logit)

    def close(self) -> None:
        if self._grammar:
            self._lib.llama_sampler_free(self._grammar)
            self._grammar = None
