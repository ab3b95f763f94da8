import json

import pytest

from py_runner import ModelCompatibilityError, ModelSpecification
from py_runner._spec import quantization_name
from py_runner._transport.mock import METADATA


def test_from_metadata_maps_fields():
    s = ModelSpecification.from_metadata(METADATA, source_url="u", download_date="2024-01-01T00:00:00+00:00")
    assert (s.architecture, s.quantization, s.model_name) == ("llama", "Q8_0", "tiny-test")
    assert (s.layer_count, s.embedding_length, s.context_length, s.vocab_size) == (2, 64, 256, 512)
    assert (s.head_count, s.head_count_kv) == (4, 2)
    assert s.rope_frequency_base == 10000.0 and s.rope_frequency_scale == 1.0
    assert (s.gguf_version, s.tensor_count, s.parameter_count, s.size_bytes) == (3, 19, 123456, 234567)
    provenance = (s.file_name, s.file_size, s.source_url, s.sha256, s.cache_hit)
    assert provenance == ("tiny.gguf", 250000, "u", None, False)
    s.validate()
    d = s.to_dict()
    assert json.loads(json.dumps(d)) == d and d["rope_frequency_base"] == 10000.0


def test_fallbacks_and_arch_prefixed_keys():
    md = {
        "meta": {
            "general.architecture": "qwen2",
            "general.file_type": "15",
            "qwen2.block_count": "24",
            "qwen2.rope.scaling.factor": "4.000000",
        }
    }
    s = ModelSpecification.from_metadata(md, file_name="f.gguf", file_size=3)
    assert s.quantization == "Q4_K_M" and s.layer_count == 24 and s.rope_frequency_scale == 4.0
    assert s.rope_frequency_base is None and s.file_name == "f.gguf" and s.file_size == 3
    assert s.gguf_version is None
    s.validate()  # unknown version is not rejected


def test_quantization_from_desc_when_file_type_missing():
    s = ModelSpecification.from_metadata({"meta": {"general.architecture": "llama"}, "desc": "llama 1B Q6_K"})
    assert s.quantization == "Q6_K"


@pytest.mark.parametrize(
    "ft, name",
    [(0, "F32"), (1, "F16"), (2, "Q4_0"), (7, "Q8_0"), (18, "Q6_K"), (32, "BF16"), (999, "UNKNOWN_999")],
)
def test_quantization_names(ft, name):
    assert quantization_name(ft) == name


@pytest.mark.parametrize("version", [0, 4])
def test_validate_rejects_unsupported_versions(version):
    with pytest.raises(ModelCompatibilityError, match=str(version)):
        ModelSpecification(gguf_version=version).validate()


def test_frozen():
    with pytest.raises(AttributeError):
        ModelSpecification().architecture = "x"
