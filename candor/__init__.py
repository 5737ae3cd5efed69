"""Candor: a self-hosted assistant in the mould of Claude 2."""

__version__ = "0.1.0"
