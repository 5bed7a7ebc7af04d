"""Provenance: the library versions stored with every record."""

import importlib.metadata
import sys

from earlyphase.core.provenance import library_versions


def test_versions_are_the_installed_ones_and_each_call_gets_its_own_dict():
    first = library_versions()
    assert first["numpy"] == importlib.metadata.version("numpy")
    assert first["python"] == sys.version.split()[0]
    first["numpy"] = "changed"
    assert library_versions()["numpy"] == importlib.metadata.version("numpy")
