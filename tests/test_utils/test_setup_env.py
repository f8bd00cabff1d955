"""register_all_modules imports the packages and sets the dira_mm default scope."""
import datetime
import sys
from pathlib import Path

import pytest
from mmengine import DefaultScope

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dira_mm.utils import register_all_modules  # noqa: E402


def test_register_all_modules_sets_scope():
    register_all_modules(init_default_scope=False)
    register_all_modules()
    assert DefaultScope.get_current_instance().scope_name == 'dira_mm'

    stamp = datetime.datetime.now().strftime('%H%M%S%f')
    DefaultScope.get_instance(f'other-{stamp}', scope_name='mmengine')
    with pytest.warns(UserWarning, match='current default scope is "mmengine"'):
        register_all_modules()
    assert DefaultScope.get_current_instance().scope_name == 'dira_mm'
