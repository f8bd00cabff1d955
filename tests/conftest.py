"""Root conftest: shared test helpers (tests/helpers.py) importable as ``helpers``."""
import os.path as osp
import sys

_TESTS = osp.dirname(osp.abspath(__file__))
if _TESTS not in sys.path:  # pytest's prepend import mode adds it too; be explicit
    sys.path.insert(0, _TESTS)


import uuid  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def mm_logs():
    """A fresh current MMLogger (DEBUG) whose messages the test can read."""
    from mmengine.logging import MMLogger

    from helpers import LogRecords
    logger = MMLogger.get_instance(f'test_logs_{uuid.uuid4().hex}', log_level='DEBUG')
    handler = LogRecords()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
