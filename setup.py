"""Install dira_mm: ``pip install -e .`` (add ``[tests]`` for the test suite)."""
import os.path as osp
from importlib import metadata

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name: str) -> list:
    """Requirement lines of ``requirements/<name>.txt`` (comments dropped)."""
    with open(osp.join(HERE, 'requirements', f'{name}.txt'), encoding='utf-8') as f:
        return [ln.split('#')[0].strip() for ln in f if ln.split('#')[0].strip()]


def mmcv_requirement() -> list:
    """mmcv's transforms are needed; the full mmcv (compiled ops) satisfies it, otherwise
    mmcv-lite (same package without compiled ops, a wheel on PyPI) is installed."""
    try:
        metadata.version('mmcv')
        return []
    except metadata.PackageNotFoundError:
        return ['mmcv-lite>=2.0.0,<2.3']


def version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'dira_mm', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='dira_mm',
    version=version(),
    description='Self-supervised pre-training of medical-image models (DiRA and friends) '
    'on OpenMMLab mmengine',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['dira_mm', 'dira_mm.*']),
    install_requires=read_requirements('runtime') + mmcv_requirement(),
    extras_require={'tests': read_requirements('tests')},
    zip_safe=False,
)
