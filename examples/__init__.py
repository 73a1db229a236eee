"""Examples that use the decision core as a library (run from the repository root)."""
