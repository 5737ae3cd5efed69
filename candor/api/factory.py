"""Builds the app inside each server worker from settings `candor serve` put in the environment,
so several worker processes (`--workers N`) can share one database."""

from __future__ import annotations

import json

from fastapi import FastAPI

from candor.config import env

SETTINGS_VAR = "CANDOR_SERVE_SETTINGS"


def app_from_env() -> FastAPI:
    from candor.api.app import create_app
    from candor.engine.hub import EngineHub
    from candor.registry import load_registry
    from candor.store import open_store

    conf = json.loads(env(SETTINGS_VAR) or "{}")
    hub = EngineHub(load_registry(conf.get("models_file")))
    if conf.get("preload", True):
        hub.preload(hub.registry.default_name())
    return create_app(hub, keys=conf.get("keys", []), no_auth=conf.get("no_auth", False),
                      max_body_bytes=conf.get("max_body_bytes", 32 * 1024 * 1024),
                      store=open_store(migrate=False), host=conf.get("host", "127.0.0.1"))
