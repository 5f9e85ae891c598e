"""The ``mmupt`` command line: one sub-command per stage, plus rounds, campaigns and the demo.

Sub-commands live in ``flows/commands/<name>.py`` and register themselves on ``app``; they are
discovered here so that adding a stage never means editing this file. User errors
(``MmuptError``) print one line and exit 2; anything else keeps its traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from rich.console import Console

from flows import commands
from flows.app import app
from mmupt.errors import MmuptError

for module in pkgutil.iter_modules(commands.__path__):
    importlib.import_module(f"{commands.__name__}.{module.name}")


def main() -> None:
    try:
        app(standalone_mode=False)
    except MmuptError as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
