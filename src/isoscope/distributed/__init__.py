"""Running isoscope on a Ray cluster (the optional ``isoscope[ray]`` extra).

Importing this package does not import Ray; the engines import it when they start.
"""

from isoscope.distributed._analyze import RayEngine

__all__ = ["RayEngine"]
