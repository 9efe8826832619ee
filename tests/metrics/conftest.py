"""Run the metrics tests single-threaded: on a busy shared CPU, OpenMP/BLAS thread pools spin
and make small problems many times slower."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    from threadpoolctl import threadpool_limits

    try:
        import faiss

        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
    except ImportError:  # pragma: no cover
        faiss, before = None, None
    with threadpool_limits(1):
        yield
    if faiss is not None:
        faiss.omp_set_num_threads(before)
