"""Every error modelcheck raises on purpose, in one place.

Each message names the file / field / value at fault and says how to fix it; callers show
``str(error)`` to the user and never a traceback. Errors also subclass the built-in they resemble,
so ``except ValueError`` keeps working for code that does not know modelcheck.

Hierarchy::

    ModelcheckError
    ├── GateFileError (ValueError)        a gate file is malformed; carries file, json_path, line
    ├── ReportError (ValueError)          a results report is unreadable or does not match its schema
    ├── BackendError (RuntimeError)       no backend by that name, or it cannot handle the request
    ├── ModelLoadError (OSError)          a model cannot be found or loaded
    │   └── DeviceUnavailableError        the device asked for is not on this machine (pytest: skip)
    ├── DataError (ValueError)            a dataset cannot be loaded, or lacks a column / label
    ├── CheckError (ValueError)           a check cannot be computed (e.g. empty data)
    ├── GitHubError (RuntimeError)        GitHub cannot be reached or answers an error (not a 403 on a comment)
    ├── PublishRefused (ValueError)       modelcheck publish will not publish: nothing (more) was sent
    ├── HubUnavailable (ConnectionError)  the Hub kept failing; the message says what is and is not there
    └── ScaffoldError (ValueError)        modelcheck init lacks an answer, or would overwrite a file
"""

from __future__ import annotations


class ModelcheckError(Exception):
    """Base class of the errors modelcheck raises on purpose."""


class GateFileError(ModelcheckError, ValueError):
    """A gate file is malformed.

    ``file`` is the path as given, ``json_path`` the place in the document (``$.checks[2].min``)
    and ``line`` the 1-based line where it is known.
    """

    def __init__(
        self,
        file: str,
        problem: str,
        *,
        json_path: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = file
        self.problem = problem
        self.json_path = json_path
        self.line = line
        where = file
        if line is not None:
            where += f":{line}"
        if json_path is not None and json_path != "$":
            where += f" at {json_path}"
        super().__init__(f"{where}: {problem}")


class ReportError(ModelcheckError, ValueError):
    """A results report cannot be read or does not match the report schema."""


class BackendError(ModelcheckError, RuntimeError):
    """A backend is not installed or cannot do what the gate asks."""


class ModelLoadError(ModelcheckError, OSError):
    """A model cannot be found or loaded."""


class DeviceUnavailableError(ModelLoadError):
    """The device (or dtype) a gate or test asks for is not available here.

    pytest reports the checks as skipped with this message; the CLI reports it as an error.
    """


class DataError(ModelcheckError, ValueError):
    """A dataset cannot be loaded, lacks a column, or holds labels the model does not know."""


class CheckError(ModelcheckError, ValueError):
    """A check cannot be computed on the data it was given."""


class GitHubError(ModelcheckError, RuntimeError):
    """The GitHub API cannot be reached or answered an error the command cannot work around."""


class PublishRefused(ModelcheckError, ValueError):
    """``modelcheck publish`` refuses: the report, the files, the token or the Hub repo's state forbid it."""


class HubUnavailable(ModelcheckError, ConnectionError):
    """The Hub kept failing (429, 5xx, network) after retries; the message says what landed; a rerun finishes."""


class ScaffoldError(ModelcheckError, ValueError):
    """``modelcheck init`` cannot write the gate file: an answer is missing, or the file already exists."""
