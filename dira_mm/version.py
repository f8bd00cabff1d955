"""Version of dira_mm."""
__version__ = '0.1.0'
