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
@click.option("--no-auth", is_flag=True,
              help="Accept model requests without a key (loopback addresses only; admin endpoints still need one).")
@click.option("--preload/--no-preload", default=True, show_default=True, help="Load the default model at start.")
@click.option("--models-file", default=None, help="Extra registry TOML (default: $CANDOR_MODELS_FILE).")
@click.option("--max-body-bytes", type=int, default=32 * 1024 * 1024, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True,
              help="Server processes; each loads the model, all share the database and its limits.")
@click.option("--admin-user", default="admin", show_default=True, help="Name of the first admin, made if none exists.")
@click.option("--admin-password", default=None, help="Password of that first admin (default: generated, printed once).")
@handle_errors
def serve(host, port, api_keys, no_auth, preload, models_file, max_body_bytes, workers, admin_user, admin_password):
    """Serve the Anthropic and OpenAI-compatible APIs."""
    import json
    import os

    import uvicorn

    from candor.accounts.users import ensure_admin
    from candor.api.auth import bootstrap_key_file, load_keys
    from candor.api.factory import SETTINGS_VAR
    from candor.registry import load_registry
    from candor.store import open_store
    from candor.web.throttle import SigninThrottle

    if no_auth and not is_loopback(host):
        raise InvalidRequestError(f"--no-auth is refused when binding to {host}, which is not a loopback address",
                                  field="--no-auth")
    if no_auth:
        click.echo("WARNING: --no-auth: any local process can use the model endpoints without a key "
                   "(the admin and critique endpoints still need one).", err=True)
    keys, new_key = load_keys(list(api_keys))  # with --no-auth too: admin endpoints still need a key
    if new_key:
        click.echo(f"Generated an API key (saved in {bootstrap_key_file()}):\n  {new_key}", err=True)
    if workers < 1:
        raise InvalidRequestError(f"must be >= 1, got {workers}", field="--workers")
    SigninThrottle()  # a bad CANDOR_SIGNIN_* setting fails here, before any worker starts
    from candor.moderation.service import Moderator

    Moderator.from_settings()  # so do bad CANDOR_MODERATION* settings and a missing classifier file
    registry = load_registry(models_file)  # a broken registry fails here, before any worker starts
    store = open_store()  # migrations run once, before the workers start
    with store.session() as session:
        made = ensure_admin(session, admin_user, admin_password)
    if made:
        user, password = made
        shown = "(as given)" if admin_password else password
        click.echo(f"Created the first admin {user.username!r}; password (shown once): {shown}", err=True)
    if preload:  # assemble/verify the default model once, with progress, before the workers load it
        from candor.engine.weights import ensure_weights

        ensure_weights(registry.get(registry.default_name()), cli_progress())
    os.environ[SETTINGS_VAR] = json.dumps({"keys": keys, "no_auth": no_auth, "max_body_bytes": max_body_bytes,
                                           "models_file": models_file, "preload": preload, "host": host})
    click.echo(f"Candor is serving on http://{host}:{port} with {workers} worker(s) "
               f"(Anthropic: base_url=http://{host}:{port}; OpenAI: base_url=http://{host}:{port}/v1)", err=True)
    uvicorn.run("candor.api.factory:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning", timeout_graceful_shutdown=5)
