"""`candor serve`: the API server (and, later, the chat page) on the embedded model."""

from __future__ import annotations

import ipaddress

import click

from candor.cli.common import cli_progress, handle_errors
from candor.errors import InvalidRequestError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--api-key", "api_keys", multiple=True, help="Accepted API key (repeatable; also $CANDOR_API_KEYS).")
@click.option("--no-auth", is_flag=True, help="Accept requests without a key (loopback addresses only).")
@click.option("--preload/--no-preload", default=True, show_default=True, help="Load the default model at start.")
@click.option("--models-file", default=None, help="Extra registry TOML (default: $CANDOR_MODELS_FILE).")
@click.option("--max-body-bytes", type=int, default=32 * 1024 * 1024, show_default=True)
@handle_errors
def serve(host, port, api_keys, no_auth, preload, models_file, max_body_bytes):
    """Serve the Anthropic and OpenAI-compatible APIs."""
    import asyncio

    import uvicorn

    from candor.api import create_app
    from candor.api.auth import bootstrap_key_file, load_keys
    from candor.engine.hub import EngineHub
    from candor.registry import load_registry

    if no_auth and not is_loopback(host):
        raise InvalidRequestError(f"--no-auth is refused when binding to {host}, which is not a loopback address",
                                  field="--no-auth")
    keys: list[str] = []
    if no_auth:
        click.echo("WARNING: --no-auth: any local process can use this server without a key.", err=True)
    else:
        keys, new_key = load_keys(list(api_keys))
        if new_key:
            click.echo(f"Generated an API key (saved in {bootstrap_key_file()}):\n  {new_key}", err=True)
    hub = EngineHub(load_registry(models_file), progress=cli_progress())
    if preload:
        asyncio.run(hub.get(hub.registry.default_name()))
    app = create_app(hub, keys=keys, no_auth=no_auth, max_body_bytes=max_body_bytes)
    click.echo(f"Candor is serving on http://{host}:{port} (Anthropic: base_url=http://{host}:{port}; "
               f"OpenAI: base_url=http://{host}:{port}/v1)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
