"""Build script: compiles the Cython sources in ext/ into modules of the fastdkim package.

Without a C compiler (or with FASTDKIM_NO_EXTENSIONS=1) the package installs without
them and the pure-Python twins serve.  FASTDKIM_REQUIRE_EXTENSIONS=1 turns a failed
build into an error instead of a fallback.
"""
import glob
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NO_EXT = os.environ.get("FASTDKIM_NO_EXTENSIONS", "") not in ("", "0")
REQUIRE_EXT = os.environ.get("FASTDKIM_REQUIRE_EXTENSIONS", "") not in ("", "0")


class OptionalBuildExt(build_ext):
    """Build extensions, but fall back to pure Python if compilation fails."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler, missing headers, ...
            if REQUIRE_EXT:
                raise
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            if REQUIRE_EXT:
                raise
            self._warn(exc)

    @staticmethod
    def _warn(exc):
        sys.stderr.write(
            "WARNING: fastdkim C extension could not be built (%s); "
            "the pure-Python core will be used.\n" % (exc,)
        )


def extensions():
    if NO_EXT:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE_EXT:
            raise
        sys.stderr.write("WARNING: Cython not available; installing the pure-Python core.\n")
        return []
    args = [] if sys.platform == "win32" else ["-O3"]
    # _pipe.h: a POSIX thread and dlopen/dlsym (in libc since glibc 2.34, in libdl before)
    link = [] if sys.platform == "win32" else ["-pthread"]
    libs = ["dl"] if sys.platform.startswith("linux") else []
    # _canon.pyx includes the .pxi parts beside it and the C kernels of the .h files.
    parts = sorted(glob.glob(os.path.join("ext", "_*.pxi"))) + sorted(glob.glob(os.path.join("ext", "_*.h")))
    exts = [
        Extension(
            "fastdkim._canon",
            ["ext/_canon.pyx"],
            include_dirs=["ext"],
            depends=parts,
            extra_compile_args=args + link,
            extra_link_args=link,
            libraries=libs,
        ),
    ]
    return cythonize(
        exts,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
