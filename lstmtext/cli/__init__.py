"""The ``lstmtext`` command line (Typer + rich).

Only typer and rich are imported at start-up; each command imports the
library code (and TensorFlow, where needed) when it runs.
"""

from lstmtext.cli.app import app, main

__all__ = ["app", "main"]
