"""Adds the top-level templates/ and static/ folders to the build as webapp.templates and webapp.static.

Everything else is in pyproject.toml. Its [tool.setuptools.packages.find] finds every package under
webapp/, but discovery only sees directories that exist there, and pyproject.toml cannot name extra
packages next to a `find`. The folders for these two come from [tool.setuptools.package-dir] and
their files from [tool.setuptools.package-data]; tests/test_packaging.py checks the wheel.
"""

from setuptools import setup
from setuptools.command.build_py import build_py

ASSET_PACKAGES = ("webapp.templates", "webapp.static")


class BuildPyWithAssets(build_py):
    def finalize_options(self) -> None:
        super().finalize_options()
        found = list(self.packages or ())
        self.packages = found + [package for package in ASSET_PACKAGES if package not in found]
        self.__dict__.pop("data_files", None)  # computed from self.packages: let it be computed again


setup(cmdclass={"build_py": BuildPyWithAssets})
