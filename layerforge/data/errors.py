"""DatasetError, apart from the package's __init__ so that the modules it re-exports can raise it."""


class DatasetError(ValueError):
    """A dataset file is missing, corrupt or inconsistent; the message names the file."""
