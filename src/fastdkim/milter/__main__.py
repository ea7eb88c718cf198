"""``python -m fastdkim.milter``: the milter (as ``fastdkim milter``)."""
import sys

from ..cli.milter import main

sys.exit(main())
