"""Typed errors. Each names the problem and the fix; the CLI prints them as one line with exit code 2."""


class BmsdkError(Exception):
    """Base class for every error bmsdk raises on purpose."""

    exit_code = 2

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}. Fix: {fix}" if fix else problem)


class SourceError(BmsdkError):
    """The model source is missing, unreadable, unsafe or of an unknown kind."""


class DataError(BmsdkError):
    """Evaluation or calibration data is missing, malformed or does not fit the model."""


class UnsupportedError(BmsdkError):
    """A task, target, precision or option that bmsdk (or the chosen target) does not support."""


class ManifestError(BmsdkError):
    """bmsdk.json is missing, malformed or from a newer schema."""

    max_problem = 300  # a manifest is untrusted: what it holds must not flood the terminal

    def __init__(self, problem: str, fix: str | None = None):
        if len(problem) > self.max_problem:
            problem = problem[: self.max_problem - 3] + "..."
        super().__init__(problem, fix)


class IntegrityError(BmsdkError):
    """A file of the artifact does not match the checksum in its manifest."""


class ModelFileError(BmsdkError):
    """An artifact's model file cannot be loaded by its runtime: corrupt, not the declared format, or unsafe."""


class SignatureError(IntegrityError):
    """An artifact that must be signed is unsigned, or its bmsdk.sig is malformed, invalid or by another key."""


class SigningKeyError(BmsdkError):
    """A key file for signing or verifying is missing, not a PEM, or not an Ed25519 key of the right kind."""


class InputError(BmsdkError):
    """Inputs given to a model do not match its declared names, dtypes or shapes."""


class RunError(BmsdkError):
    """The runtime failed on inputs that passed every check: a bug in the artifact or the runtime."""

    exit_code = 1


class BackendUnavailableError(BmsdkError):
    """The runtime a backend needs is not installed, or the hardware it needs is absent."""


class ConversionError(BmsdkError):
    """A converter failed on a model it accepted; the message carries the converter's reason."""

    exit_code = 1
