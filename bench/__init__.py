"""The benchmark (`make bench` → BENCHMARKS.md); never deployed."""
