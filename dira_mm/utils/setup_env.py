"""Register every dira_mm module and make ``dira_mm`` the default registry scope."""
import datetime
import importlib
import importlib.util
import warnings

from mmengine import DefaultScope

__all__ = ['register_all_modules']

_PACKAGES = ('datasets', 'engine', 'evaluation', 'models', 'structures')


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import the dira_mm sub-packages so their components are registered.

    Needed when building from dira_mm's registries outside a Runner (a Runner with
    ``default_scope='dira_mm'`` imports them through the registries' ``locations``).
    Sub-packages that do not exist are skipped; one that exists but fails to import
    raises, so a broken component is never silently unregistered.

    Args:
        init_default_scope: make ``'dira_mm'`` the current ``DefaultScope``; if another
            scope is current, a new ``dira_mm`` scope instance is created (with a warning).
    """
    for name in _PACKAGES:
        module = f'dira_mm.{name}'
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('dira_mm', scope_name='dira_mm')
    elif current.scope_name != 'dira_mm':
        warnings.warn(f'The current default scope is "{current.scope_name}", not "dira_mm"; '
                      'register_all_modules creates and activates a "dira_mm" scope.')
        stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S-%f')
        DefaultScope.get_instance(f'dira_mm-{stamp}', scope_name='dira_mm')
