"""The public names: what `import py_runner` offers is exactly `__all__`, each defined inside py_runner (as
httpx guards its own in tests/test_exported_members.py). A name added or removed must be added or removed here
on purpose."""

import py_runner

PUBLIC = set(
    """
    AccessDeniedError Artifacts BaseLlamaCache BridgeError CacheQuotaError CachedModel CacheUsage
    ChatTemplateError ContextOverflowError CorsBlockedError EmbeddingAbortedError EmbeddingError
    EmbeddingInputTooLongError EmbeddingNotSupportedError EngineCrashedError EngineOutOfMemoryError
    GenerateTextParams GenerationError GenerationNotSupportedError GenerationResult
    InvalidParameterError Llama LlamaCache LlamaGrammar LlamaRAMCache LlamaRunner LlamaState
    LoadAbortedError LoadingStage LocalWebAIError MAX_SUPPORTED_GGUF_VERSION MIN_SUPPORTED_GGUF_VERSION
    ModelCache ModelCompatibilityError ModelInitializationError ModelIntegrityError ModelLoadError
    ModelNotFoundError ModelNotLoadedError ModelTooLargeError MockTransport ModelSpecification
    NetworkError ProgressInfo RerankNotSupportedError RunnerBusyError ServerError SessionInfo
    SessionNotFoundError StateError StateIntegrityError StateMismatchError SyncCallError TokenChunk
    TruncatedModelError __version__
    """.split()
)


def test_all_is_the_public_api() -> None:
    assert set(py_runner.__all__) == PUBLIC
    assert len(py_runner.__all__) == len(PUBLIC)  # no name twice


def test_every_public_member_is_exported() -> None:
    # "host": a subpackage, imported. Names that are not identifiers ("@py_builtins") are pytest's: installed,
    # py_runner registers a pytest plugin, and pytest rewrites the asserts of the plugin's distribution.
    names = {name for name in vars(py_runner) if name.isidentifier() and not name.startswith("_")}
    members = names - {"host"}
    assert members == PUBLIC - {"__version__"}


def test_exported_classes_and_functions_live_in_py_runner() -> None:
    for name in py_runner.__all__:
        module = getattr(getattr(py_runner, name), "__module__", "py_runner")
        assert module.startswith("py_runner.") or module == "py_runner", f"{name} comes from {module}"
