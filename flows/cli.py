"""The ``mmupt`` command line: one sub-command per stage, plus rounds, campaigns and the demo.

Sub-commands live in ``flows/commands/<name>.py`` and register themselves on ``app``; they are
discovered here so that adding a stage never means editing this file. User errors
(``MmuptError``) and usage errors (an unknown command, a missing or malformed option) print one
line and exit 2; anything else keeps its traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from rich.console import Console

from flows import commands
from flows.app import app
from flows.runtime import configure, configure_console_logging
from mmupt.errors import MmuptError

configure()  # process defaults (environment variables), before any command imports its libraries
for module in pkgutil.iter_modules(commands.__path__):
    importlib.import_module(f"{commands.__name__}.{module.name}")


def _fail(message: str, code: int) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def main() -> None:
    configure_console_logging()
    try:
        app(standalone_mode=False)
    except MmuptError as err:
        _fail(str(err), 2)
    except typer.Abort:
        _fail("aborted", 130)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.TyperException as err:  # typer's (vendored click) usage errors: exit code 2
        ctx = getattr(err, "ctx", None)
        command = ctx.command_path if ctx is not None else "mmupt"
        _fail(f"{err.format_message()} (see: {command} --help)", getattr(err, "exit_code", 2))


if __name__ == "__main__":
    main()
