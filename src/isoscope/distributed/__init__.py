"""Scale-out engines (optional extra ``isoscope[ray]``).

:func:`extract_ray` runs :func:`isoscope.extract.extract` on a Ray Data actor pool and writes
the same store. Ray is imported only when an engine runs, so ``import isoscope`` (and this
package) never imports it.
"""

from isoscope.distributed._extract import extract_ray, require_ray

__all__ = ["extract_ray", "require_ray"]
