"""The studies past the assignment, each run from the repository root as `python -m studies.NAME`."""
