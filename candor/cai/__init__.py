"""Constitutional AI data: critique and revision (`critique`, `revise`), AI feedback labels
(`feedback`), deduplication (`dedup`), few-shot examples (`fewshot`), hh-rlhf access (`hh`).
A stronger remote generator is any registry model, Anthropic-compatible ones included
(candor.engine.anthropic, which the engine hub builds like every other engine)."""
