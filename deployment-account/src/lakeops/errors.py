"""The error every lakeops step raises when it refuses or fails: the CLI prints it and exits 1."""


class LakeopsError(RuntimeError):
    """A refused or failed step; the message names the step and what to do."""
