"""``python -m fastdkim.cli``: the command line (as ``python -m fastdkim``)."""
import sys

from . import main

sys.exit(main())
