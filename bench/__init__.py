"""The benchmark of issue 4 (`make bench` → BENCHMARKS.md); never deployed."""
