import subprocess
import sys

import pytest

import py_runner as pr
from py_runner._errors import error_from_js


def test_hierarchy():
    load_errors = (
        pr.ModelCompatibilityError,
        pr.ModelInitializationError,
        pr.NetworkError,
        pr.LoadAbortedError,
    )
    for cls in load_errors:
        assert issubclass(cls, pr.ModelLoadError)
    for cls in (
        pr.ModelLoadError,
        pr.ModelNotLoadedError,
        pr.GenerationError,
        pr.InvalidParameterError,
        pr.BridgeError,
        pr.RunnerBusyError,
    ):
        assert issubclass(cls, pr.LocalWebAIError) and cls.__doc__
    assert issubclass(pr.InvalidParameterError, ValueError)
    e = pr.NetworkError("x", url="u", status=404)
    assert (e.url, e.status) == ("u", 404)


@pytest.mark.parametrize(
    "name, cls",
    [
        ("AbortError", pr.LoadAbortedError),
        ("NetworkError", pr.NetworkError),
        ("ModelInitializationError", pr.ModelInitializationError),
        ("ModelCompatibilityError", pr.ModelCompatibilityError),
        ("GenerationError", pr.GenerationError),
        ("BridgeError", pr.BridgeError),
        ("TypeError", pr.BridgeError),
        ("", pr.BridgeError),
    ],
)
def test_error_from_js(name, cls):
    err = error_from_js(name, "it broke", "loading")
    assert type(err) is cls and "it broke" in str(err) and "loading" in str(err)


def test_network_error_url_and_status_cross_as_fields():
    # The URL and status come as fields of the error (web/shared/protocol.js), never parsed from the message.
    err = error_from_js("NetworkError", "it failed", "downloading", url="http://x/m.gguf", status=404)
    assert type(err) is pr.ModelNotFoundError and (err.url, err.status) == ("http://x/m.gguf", 404)
    assert type(error_from_js("NetworkError", "x", status=403)) is pr.AccessDeniedError
    assert type(error_from_js("NetworkError", "x", status=503)) is pr.ServerError
    text_only = error_from_js("NetworkError", "fetching http://x/m.gguf failed: HTTP 404", "downloading")
    assert type(text_only) is pr.NetworkError and (text_only.url, text_only.status) == (None, None)


def test_unknown_name_kept_in_message():
    assert str(error_from_js("RangeError", "oom", None)) == "RangeError: oom"


def test_import_is_light():
    code = (
        "import sys, py_runner; heavy = {'gguf', 'numpy', 'playwright', 'js', 'pyodide'};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert pr.__version__ == "0.1.0"
    assert (pr.MIN_SUPPORTED_GGUF_VERSION, pr.MAX_SUPPORTED_GGUF_VERSION) == (2, 3)
