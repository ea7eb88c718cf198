"""The former name of :mod:`fastdkim.mailstore`, kept so that existing imports work."""
import sys

from . import mailstore
from .mailstore import *  # noqa: F401,F403 (what type checkers see)

sys.modules[__name__] = mailstore
