"""Synthetic data generators (sample Bedrock invocation logs) for demos, tests and benchmarks."""
