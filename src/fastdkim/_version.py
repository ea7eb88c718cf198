"""The package version, the only place it is written: ``pyproject.toml``
reads it from here when the package is built (``[tool.setuptools.dynamic]``),
and :mod:`fastdkim` re-exports it as ``fastdkim.__version__``."""

__version__ = "0.1.0"
