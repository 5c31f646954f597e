"""Incoming → [Reply]: the command table and dispatch (dispatch.py), one module per topic, and what
the scheduler asks of the core (daily.py). Adapters may import this package and inbound.py."""

from bot.core.commands.dispatch import COMMANDS, COMMANDS_BY_NAME, Call, Command, Core, Option, commands_with

__all__ = ["COMMANDS", "COMMANDS_BY_NAME", "Call", "Command", "Core", "Option", "commands_with"]
