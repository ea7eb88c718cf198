"""The former name of :mod:`fastdkim.keysources`, kept so that existing imports work."""
import sys

from . import keysources
from .keysources import *  # noqa: F401,F403 (what type checkers see)

sys.modules[__name__] = keysources
