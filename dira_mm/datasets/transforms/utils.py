"""Helpers shared by the random transforms of the data pipeline."""
import numpy as np

__all__ = ['get_rng']


def get_rng(results: dict) -> np.random.Generator:
    """Return the random generator a transform must draw from.

    The randomness contract of ``dira_mm`` (``docs/architecture.md``): a dataset with a
    ``seed`` puts a per-sample ``numpy.random.Generator`` into ``results['rng']``, which
    makes the augmentations a pure function of ``(seed, epoch, index)``. Without one, a
    fresh Generator is seeded from numpy's *global* state, so the seeding that
    mmengine's ``worker_init_fn`` does per dataloader worker still decorrelates workers
    and ``np.random.seed`` still makes a run repeatable.

    The fallback Generator is not stored in ``results``: a wrapper that runs several
    transforms (e.g. ``DiRAViews``) calls this once and passes the same Generator down.

    Args:
        results (dict): The pipeline's results dict.

    Returns:
        numpy.random.Generator: ``results['rng']`` when present, else a new Generator.
    """
    rng = results.get('rng')
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"results['rng'] must be a numpy.random.Generator, got {type(rng)}")
        return rng
    return np.random.default_rng(np.random.randint(0, 2**63 - 1, dtype=np.int64))
