"""Test infrastructure shared by the integration tests and the benchmarks (the delay proxy)."""
