"""Constitutional AI data: critique and revision (`critique`, `revise`), AI feedback labels
(`feedback`), deduplication (`dedup`), few-shot examples (`fewshot`), hh-rlhf access (`hh`), and
an Anthropic-compatible generator for stronger remote models (`anthropic_engine`)."""
