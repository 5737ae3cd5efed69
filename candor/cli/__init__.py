"""The `candor` command."""

from __future__ import annotations

import click

from candor import __version__
from candor.cli.accounts import COMMANDS as ACCOUNT_COMMANDS
from candor.cli.cai import cai
from candor.cli.chat import chat
from candor.cli.complete import complete
from candor.cli.constitution import constitution
from candor.cli.documents import ask, summarize
from candor.cli.eval import eval_command
from candor.cli.feedback import feedback
from candor.cli.models import models
from candor.cli.moderation import moderation
from candor.cli.report import report
from candor.cli.serve import serve
from candor.cli.settings import settings_command
from candor.cli.train import train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="candor")
def main():
    """Candor: a self-hosted assistant aligned with Constitutional AI."""


main.add_command(chat)
main.add_command(complete)
main.add_command(feedback)
main.add_command(eval_command)
main.add_command(models)
main.add_command(moderation)
main.add_command(report)
main.add_command(serve)
main.add_command(cai)
main.add_command(constitution)
main.add_command(train)
main.add_command(settings_command)
main.add_command(ask)
main.add_command(summarize)
for command in ACCOUNT_COMMANDS:
    main.add_command(command)
