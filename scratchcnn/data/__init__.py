"""Datasets stored as IDX files (MNIST and its relatives)."""
