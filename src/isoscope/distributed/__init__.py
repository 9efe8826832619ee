"""Running isoscope on a Ray cluster (the optional ``isoscope[ray]`` extra).

:func:`extract_ray` runs :func:`isoscope.extract.extract` on a Ray Data actor pool and writes
the same store; :class:`RayEngine` runs analyze's per-layer passes and exact neighbour searches
as Ray tasks. Ray is imported only when an engine runs, so ``import isoscope`` (and this
package) never imports it.
"""

from isoscope.distributed._analyze import RayEngine
from isoscope.distributed._extract import extract_ray, require_ray

__all__ = ["RayEngine", "extract_ray", "require_ray"]
