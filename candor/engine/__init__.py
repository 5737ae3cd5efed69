"""Engines: the embedded llama.cpp engine, the remote (OpenAI-compatible) one, and the hub that
loads them by registry name."""
