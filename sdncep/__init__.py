"""The ``sdncep`` command line: one entry point for demo, benchmarks, simulator,
training, reports and the config checker (see :mod:`sdncep.cli`)."""
