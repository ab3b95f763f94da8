import logging

import pytest

from py_runner import GenerateTextParams, InvalidParameterError


def test_defaults_validate_and_bridge_options():
    p = GenerateTextParams()
    p.validate()
    opts = p.to_bridge_options()
    sampling = {"temp", "top_k", "top_p", "min_p", "typical_p", "repeat_penalty", "repeat_last_n"}
    penalties = {"presence_penalty", "frequency_penalty", "ignore_eos"}
    # n_threads None -> the bridge's default; no grammar, no logit bias -> left out
    assert set(opts) == {"n_predict", "seed"} | sampling | penalties
    assert 0 <= opts["seed"] < 2**32 and isinstance(opts["seed"], int)


def test_explicit_values_pass_through():
    p = GenerateTextParams(
        n_threads=4,
        seed=0,
        temp=0,
        top_k=0,
        top_p=1,
        min_p=0.1,
        typical_p=0.9,
        repeat_penalty=1.1,
        repeat_last_n=-1,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        ignore_eos=True,
        logit_bias={7: float("-inf"), 3: 2},
        grammar='root ::= "a"',
    )
    p.validate()
    assert p.to_bridge_options() == {
        "n_predict": 128,
        "temp": 0.0,
        "top_k": 0,
        "top_p": 1.0,
        "seed": 0,
        "n_threads": 4,
        "min_p": 0.1,
        "typical_p": 0.9,
        "repeat_penalty": 1.1,
        "repeat_last_n": -1,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "ignore_eos": True,
        "logit_bias": [[3, 2.0], [7, float("-inf")]],
        "grammar": 'root ::= "a"',
    }


@pytest.mark.parametrize(
    "kw",
    [
        {"n_predict": 0},
        {"n_predict": 1.5},
        {"ctx_size": 15},
        {"batch_size": 0},
        {"n_threads": 0},
        {"temp": -0.1},
        {"top_k": -1},
        {"top_p": 0},
        {"min_p": 1.5},
        {"typical_p": 0},
        {"repeat_penalty": 0},
        {"repeat_last_n": -2},
        {"presence_penalty": float("inf")},
        {"stop": ["ok", ""]},
        {"stop": "END"},
        {"logit_bias": {-1: 1.0}},
        {"logit_bias": {1: float("nan")}},
        {"grammar": "  "},
        {"top_p": 1.01},
        {"seed": -1},
        {"seed": 2**32},
        {"seed": True},
        {"temp": "hot"},
    ],
)
def test_out_of_range_rejected_with_field_name(kw):
    with pytest.raises(InvalidParameterError, match=next(iter(kw))) as info:
        GenerateTextParams(**kw).validate()
    assert isinstance(info.value, ValueError)


def test_boundaries_accepted():
    GenerateTextParams(n_predict=1, ctx_size=16, batch_size=1, n_threads=1, seed=2**32 - 1).validate()


def test_chatml():
    assert GenerateTextParams().format_prompt("hi") == "hi"
    assert GenerateTextParams(chatml=True).format_prompt("hi") == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_n_gpu_layers_warns(caplog):
    with caplog.at_level(logging.WARNING):
        GenerateTextParams(n_gpu_layers=10).to_bridge_options()
    assert "n_gpu_layers" in caplog.text
