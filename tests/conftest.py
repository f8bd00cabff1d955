"""Root conftest: shared test helpers (tests/helpers.py) importable as ``helpers``."""
import os.path as osp
import sys

_TESTS = osp.dirname(osp.abspath(__file__))
if _TESTS not in sys.path:  # pytest's prepend import mode adds it too; be explicit
    sys.path.insert(0, _TESTS)
