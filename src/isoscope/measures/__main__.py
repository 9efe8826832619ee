"""``python -m isoscope.measures`` prints docs/results.md."""

from isoscope.measures import results_reference

print(results_reference())
