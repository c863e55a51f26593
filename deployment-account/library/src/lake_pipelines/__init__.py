"""What the data lake's app repositories import: the branch pipeline, the checks every app runs, build commands."""
