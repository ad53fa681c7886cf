"""Processing pipeline: preprocess -> infer -> build results (run by workers, never on an association)."""
