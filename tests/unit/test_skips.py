"""The skip policy: every environment skip goes through py_runner/host/skips.py, which fails it under
PY_RUNNER_REQUIRE_E2E=1 (the pytest plugin's browser fixture too), and under that variable a run with a skip
that tests/allowed_skips.txt does not list fails (conftest.py at the top of the repository)."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
from types import ModuleType

import pytest

from py_runner.host.build.paths import REPO_ROOT
from py_runner.host.skips import REQUIRE_ENV, import_or_skip, skip_or_fail

pytest_plugins = ["pytester"]

ROOT_CONFTEST = REPO_ROOT / "conftest.py"
ALLOWLIST = REPO_ROOT / "tests" / "allowed_skips.txt"


def _root_conftest() -> ModuleType:
    """The repository's conftest.py as a module of its own name ("conftest" is this folder's)."""
    spec = importlib.util.spec_from_file_location("py_runner_root_conftest", ROOT_CONFTEST)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcome(call) -> str:
    """How `call()` ends a test: "skip", "fail" or "none" (a skip must not pass for a failure, nor for
    nothing)."""
    try:
        call()
    except pytest.skip.Exception as exc:
        return f"skip: {exc.msg}"
    except pytest.fail.Exception as exc:
        return f"fail: {exc.msg}"
    return "none"


def test_a_missing_environment_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    assert _outcome(lambda: skip_or_fail(None)) == "none"  # nothing missing: nothing happens
    assert _outcome(lambda: skip_or_fail("no browser")) == "skip: no browser"
    assert _outcome(lambda: import_or_skip("no_such_module_here")).startswith("skip: no_such_module_here")
    assert import_or_skip("json").dumps(1) == "1"
    monkeypatch.setenv(REQUIRE_ENV, "1")
    assert _outcome(lambda: skip_or_fail(None)) == "none"
    assert _outcome(lambda: skip_or_fail("no browser")) == f"fail: {REQUIRE_ENV}=1 but: no browser"
    assert _outcome(lambda: import_or_skip("no_such_module_here")).startswith(
        f"fail: {REQUIRE_ENV}=1 but: no_such_module_here"
    )


def test_the_plugins_browser_fixture_fails_under_require_e2e(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Users' tests (examples/) get the browser from the plugin: a missing one is a failure in CI too."""
    monkeypatch.setenv("PY_RUNNER_BROWSER", "chromium")
    monkeypatch.setenv("PY_RUNNER_CHROMIUM", str(pytester.path / "no-chromium-here"))
    pytester.makepyfile(test_app="def test_page(py_runner_page):\n    pass\n")
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(skipped=1)
    monkeypatch.setenv(REQUIRE_ENV, "1")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{REQUIRE_ENV}=1 but: chromium not found at *no-chromium-here*"])


SKIPPING_TESTS = """
import pytest

def test_listed():
    pytest.skip("a reason written down")

def test_unlisted():
    pytest.skip("nobody wrote this down")

@pytest.mark.xfail(reason="an expected failure is not a skip")
def test_xfail():
    assert False

def test_passes():
    pass
"""


@pytest.fixture
def policy_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """A run of SKIPPING_TESTS under the repository's own conftest.py and an allowlist naming test_listed."""
    pytester.makeconftest(ROOT_CONFTEST.read_text(encoding="utf-8"))
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "allowed_skips.txt").write_text(
        "# comment\ntest_skipping.py::test_listed | it may skip, and here is why\n", encoding="utf-8"
    )
    pytester.makepyfile(test_skipping=SKIPPING_TESTS)

    def run(required: bool) -> pytest.RunResult:
        if required:
            monkeypatch.setenv(REQUIRE_ENV, "1")
        else:
            monkeypatch.delenv(REQUIRE_ENV, raising=False)
        return pytester.runpytest("-p", "no:cacheprovider", "-ra")

    return run


def test_an_unlisted_skip_fails_the_run_under_require_e2e(policy_run) -> None:
    result = policy_run(required=True)
    result.assert_outcomes(passed=1, skipped=2, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*skips not in allowed_skips.txt*", "test_skipping.py::test_unlisted: nobody wrote this down"]
    )
    section = result.stdout.str().split("skips not in allowed_skips.txt")[1].split("short test summary")[0]
    assert "test_listed" not in section and "test_xfail" not in section


def test_without_require_e2e_a_skip_is_only_a_skip(policy_run) -> None:
    result = policy_run(required=False)
    result.assert_outcomes(passed=1, skipped=2, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "skips not in" not in result.stdout.str()


def test_the_allowlist_is_short_and_gives_a_reason_for_each_entry() -> None:
    policy = _root_conftest()
    entries = policy.read_allowlist(ALLOWLIST)
    assert len(entries) <= 10
    assert all(len(why) > 20 for _, why in entries), entries


# Its skip marks are those of the pytest run it starts inside the page, over llama-cpp-python's own tests:
# each named there with its reason, and the test fails unless exactly those are skipped.
INNER_RUN = "tests/e2e/test_llama_cpp_python_tests.py"


def _raw_skips() -> dict[str, list[int]]:
    """Files that skip without the helper (pytest.skip, importorskip, skip marks), with their lines."""
    found: dict[str, list[int]] = {}
    pattern = re.compile(r"pytest\.skip\(|importorskip\(|mark\.skip(if)?\b")
    for top in ("tests", "examples", "py_runner"):
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            rel = path.relative_to(REPO_ROOT).as_posix()
            if rel in ("py_runner/host/skips.py", "tests/unit/test_skips.py", INNER_RUN):
                continue
            lines = [i for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
            if lines:
                found[rel] = lines
    return found


def test_every_other_skip_is_in_a_file_the_allowlist_names() -> None:
    """An environment skip goes through py_runner/host/skips.py; a plain skip only where the allowlist says
    why (a new quiet skip elsewhere fails here, before CI would have to hit it)."""
    policy = _root_conftest()
    files = {pattern.split("::")[0] for pattern, _ in policy.read_allowlist(ALLOWLIST)}
    unlisted = {
        f: lines for f, lines in _raw_skips().items() if not any(fnmatch.fnmatch(f, p) for p in files)
    }
    assert not unlisted, f"skips that bypass py_runner.host.skips.skip_or_fail: {unlisted}"
