"""``python -m mixtura``: the command line (see mixtura.cli)."""
import sys

from .cli import main

sys.exit(main())
