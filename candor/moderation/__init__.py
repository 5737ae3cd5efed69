"""The safety layer: trained input and output classifiers (MiniLM embeddings + linear heads),
the per-deployment and per-key policy that acts on them, and PII detection and redaction.

Serving calls it from one place (candor.serving.generation.start_generation), so every surface
(Anthropic and OpenAI APIs, text completions, the chat page) is moderated alike; the API exposes
the classifier as `POST /v1/moderations` in OpenAI's shape.
"""
