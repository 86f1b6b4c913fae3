"""Shared pytest configuration: options, the shared models folder, and bit-exactness helpers.

Options
  --runslow        also run tests marked slow (full model sweeps, long randomized sweeps)
  --sweep N        number of random cases per randomized differential test (default: the test's own count)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests import spz_testutil from any subfolder

from spz_testutil import MODELS, REPO, SHARED  # noqa: E402,F401


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")
    parser.addoption("--sweep", type=int, default=None, help="random cases per randomized differential test")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("SPZ_RUNSLOW"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (make test-all)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sweep(request):
    """Multiplier for randomized tests: `n = sweep(default)` gives --sweep N when given, else default."""
    n = request.config.getoption("--sweep") or (int(os.environ["SPZ_SWEEP"]) if os.environ.get("SPZ_SWEEP") else None)
    return (lambda default: n if n else default)
