"""Packaging beyond pyproject.toml: the problem zoo in ``problems/`` installs as
``pinnjax.problems`` (a package-dir mapping that ``packages.find`` cannot express)."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["pinnjax", "pinnjax.*"]) + ["pinnjax.problems"],
    package_dir={"pinnjax.problems": "problems"},
)
