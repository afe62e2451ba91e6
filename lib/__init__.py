"""Small modules the scripts are built on: the hand-derived BPTT engine, atomic file writes,
argparse value types and what machine a measurement ran on. They import nothing of the project."""
