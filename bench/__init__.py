"""Benchmarks (never run as tests): see docs/benchmarks.md."""
