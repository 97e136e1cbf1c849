"""Benchmarks (run by hand, never as tests); see docs/BENCHMARKS.md."""
