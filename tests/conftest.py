"""Test-suite settings: hypothesis examples are derandomised under CI (CI=true), so a
submission's CI run tests the same examples as the developer's last run of that profile."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
