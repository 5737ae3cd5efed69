"""Operator commands: `candor db`, `users`, `keys`, `usage`, `cost`, `purge`."""

from __future__ import annotations

import datetime as dt
import json

import click

from candor.cli.common import handle_errors
from candor.config import env
from candor.text_table import format_table


def _store(migrate: bool = True):
    from candor.store import open_store

    return open_store(migrate=migrate)


# -- db -------------------------------------------------------------------------------------
@click.group()
def db():
    """Database migrations (SQLite in CANDOR_HOME, or CANDOR_DATABASE_URL)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@handle_errors
def db_upgrade(revision):
    store = _store(migrate=False)
    store.upgrade(revision)
    click.echo(f"database at revision {store.current_revision()}")


@db.command("downgrade")
@click.argument("revision")
@handle_errors
def db_downgrade(revision):
    store = _store(migrate=False)
    store.downgrade(revision)
    click.echo(f"database at revision {store.current_revision() or 'base (empty)'}")


@db.command("current")
@handle_errors
def db_current():
    click.echo(_store(migrate=False).current_revision() or "base (empty)")


# -- users ----------------------------------------------------------------------------------
@click.group()
def users():
    """Admit, list, approve, disable, export and delete users."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "member", "pending"]), default="member", show_default=True)
@click.option("--password", default=None, help="For the chat page (at least 8 characters).")
@click.option("--email", default=None)
@handle_errors
def users_create(username, role, password, email):
    from candor.accounts.users import create_user

    with _store().session() as s:
        user = create_user(s, username, role=role, password=password, email=email)
        click.echo(f"created {user.role} {user.username}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def users_list(as_json):
    from candor.accounts.users import list_users

    with _store().session() as s:
        rows = [{"username": u.username, "role": u.role, "status": u.status, "keys": len(u.keys),
                 "created_at": u.created_at.isoformat()} for u in list_users(s)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(format_table(list(rows[0]) if rows else ["username"], [[str(v) for v in r.values()] for r in rows]))


def _simple_user_command(name: str, action: str, verb: str):
    @users.command(name)
    @click.argument("username")
    @handle_errors
    def command(username):
        from candor.accounts import users as u

        with _store().session() as s:
            getattr(u, action)(s, username)
        click.echo(f"{verb} {username}")

    command.__doc__ = f"{verb.capitalize()} a user."
    return command


@users.command("limits")
@click.argument("username")
@click.option("--rpm", type=int, default=None, help="Chat-page requests per minute.")
@click.option("--itpm", type=int, default=None, help="Chat-page input tokens per minute.")
@click.option("--otpm", type=int, default=None, help="Chat-page output tokens per minute.")
@click.option("--monthly-limit-usd", type=float, default=None,
              help="Monthly spend limit over the page and all the user's keys together.")
@click.option("--clear", is_flag=True, help="Reset to the model tier's rates and no spend limit first.")
@handle_errors
def users_limits(username, rpm, itpm, otpm, monthly_limit_usd, clear):
    """Show or set a user's limits (without options: show them)."""
    from candor.accounts.users import limits_record, set_limits

    with _store().session() as s:
        user = set_limits(s, username, rpm=rpm, itpm=itpm, otpm=otpm, monthly_limit_usd=monthly_limit_usd,
                          clear=clear)
        click.echo(json.dumps({"username": user.username, **limits_record(user)}))


_simple_user_command("approve", "approve_user", "approved")
_simple_user_command("disable", "disable_user", "disabled")
_simple_user_command("delete", "delete_user", "deleted (with keys and conversations)")


@users.command("export")
@click.argument("username")
@handle_errors
def users_export(username):
    """Print everything stored about a user as JSON."""
    from candor.accounts.users import export_user

    with _store().session() as s:
        click.echo(json.dumps(export_user(s, username), indent=2))


# -- keys -----------------------------------------------------------------------------------
@click.group()
def keys():
    """Create, list, show and revoke API keys."""


@keys.command("create")
@click.option("--user", "username", required=True)
@click.option("--name", default="")
@click.option("--models", default=None, help="Comma-separated models the key may use (default: all).")
@click.option("--expires", default=None, help="ISO date or time the key stops working.")
@click.option("--rpm", type=int, default=None, help="Requests per minute.")
@click.option("--itpm", type=int, default=None, help="Input tokens per minute.")
@click.option("--otpm", type=int, default=None, help="Output tokens per minute.")
@click.option("--monthly-limit-usd", type=float, default=None, help="Monthly spend limit in USD.")
@handle_errors
def keys_create(username, name, models, expires, rpm, itpm, otpm, monthly_limit_usd):
    """Create a key; it is printed once and only its hash is kept."""
    from candor.accounts.keys import create_key
    from candor.accounts.users import get_user
    from candor.errors import InvalidRequestError

    try:
        expires_at = dt.datetime.fromisoformat(expires) if expires else None
    except ValueError:
        raise InvalidRequestError(f"not an ISO date or time: {expires!r}", field="expires") from None
    with _store().session() as s:
        key, secret = create_key(s, get_user(s, username), name=name,
                                 models=[m.strip() for m in models.split(",") if m.strip()] if models else None,
                                 expires_at=expires_at, rpm=rpm, itpm=itpm, otpm=otpm,
                                 monthly_limit_usd=monthly_limit_usd)
        click.echo(f"key {key.id} ({key.prefix}…) for {username}; copy it now, it is not shown again:")
        click.echo(secret)


@keys.command("list")
@click.option("--user", "username", default=None)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def keys_list(username, as_json):
    from candor.accounts.keys import key_record, list_keys

    with _store().session() as s:
        rows = [key_record(k) for k in list_keys(s, username)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    cols = ["id", "prefix", "user", "name", "rpm", "itpm", "otpm", "monthly_limit_usd", "revoked_at"]
    click.echo(format_table(cols, [[str(r[c] if r[c] is not None else "-") for c in cols] for r in rows]))


@keys.command("show")
@click.argument("key")
@handle_errors
def keys_show(key):
    """Show one key (by id or prefix)."""
    from candor.accounts.keys import find_key, key_record

    with _store().session() as s:
        click.echo(json.dumps(key_record(find_key(s, key)), indent=2))


@keys.command("revoke")
@click.argument("key")
@handle_errors
def keys_revoke(key):
    from candor.accounts.keys import revoke_key

    with _store().session() as s:
        revoked = revoke_key(s, key)
        click.echo(f"revoked key {revoked.id} ({revoked.prefix}…)")


# -- usage, cost, purge ---------------------------------------------------------------------
@click.command()
@click.option("--since", default=None, help="ISO date/time, or a span such as 7d or 12h.")
@click.option("--by", type=click.Choice(["day", "key", "user", "model"]), default="day", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@handle_errors
def usage(since, by, fmt):
    """Requests, tokens and cost, grouped."""
    from candor.accounts.usage import parse_since, render, report

    click.echo(render(report(_store(), parse_since(since), by), fmt))


@click.command()
@click.option("--models", default=None, help="Comma-separated tiers (default: every registry entry).")
@click.option("--answer-words", default="100,250,500", show_default=True, help="Answer sizes, comma-separated.")
@click.option("--rounds", type=int, default=3, show_default=True)
@click.option("--question-words", type=int, default=50, show_default=True)
@click.option("--users", "n_users", type=int, default=1000, show_default=True)
@click.option("--conversations-per-day", type=int, default=10, show_default=True)
@click.option("--days", type=int, default=250, show_default=True)
@click.option("--tokens-per-word", type=float, default=1.33, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def cost(models, answer_words, rounds, question_words, n_users, conversations_per_day, days, tokens_per_word,
         as_json):
    """Cost of a workload per model tier (default: Claude's launch comparison)."""
    from candor.accounts.cost import Workload, cost_table
    from candor.registry import load_registry

    registry = load_registry()
    entries = [registry.get(m.strip()) for m in models.split(",")] if models else list(registry)
    w = Workload(tuple(int(x) for x in answer_words.split(",")), rounds, question_words, n_users,
                 conversations_per_day, days, tokens_per_word)
    rows = cost_table(entries, w)
    if as_json:
        click.echo(json.dumps([{**r, "per_conversation_usd": str(r["per_conversation_usd"]),
                                "total_usd": str(r["total_usd"])} for r in rows], indent=2))
        return
    click.echo(f"{w.conversations:,} conversations ({n_users:,} users × {conversations_per_day} a day × {days} days), "
               f"{rounds} rounds, {question_words}-word questions, {tokens_per_word} tokens/word")
    click.echo(format_table(["answer words", "model", "input tok", "output tok", "per conversation", "total"],
                            [[str(r["answer_words"]), r["model"], f"{r['input_tokens']:,}", f"{r['output_tokens']:,}",
                              f"${r['per_conversation_usd']:.5f}", f"${r['total_usd']:,.2f}"] for r in rows]))


@click.command()
@click.option("--days", type=int, default=None, help="Retention in days (default: $CANDOR_RETENTION_DAYS).")
@handle_errors
def purge(days):
    """Delete conversation text (conversations with their attached files, and the judged text of
    moderation decisions) older than the retention period."""
    from candor.accounts.retention import purge_old
    from candor.errors import InvalidRequestError

    days = days if days is not None else env("CANDOR_RETENTION_DAYS")
    if days is None:
        raise InvalidRequestError("give --days or set CANDOR_RETENTION_DAYS", field="days")
    from candor.moderation.records import purge_text

    store = _store()
    removed = purge_old(store, int(days))
    cleared = purge_text(store, int(days))  # moderation decisions keep their category, lose the text
    click.echo(f"purged {removed.conversations} conversations (with {removed.attachments} attached files) and "
               f"the text of {cleared} moderation decisions older than {int(days)} days")


COMMANDS = [db, users, keys, usage, cost, purge]
