"""An independent BERT encoder in numpy (float64), to check that llama.cpp's pooled embeddings are the ones
the model defines: token + position + type embeddings, post-norm blocks, non-causal attention, pooling."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:  # the tanh form, as ggml_gelu computes it
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def bert_embedding(model: Path, tokens: list[int], pooling: str, normalize: bool = True) -> np.ndarray:
    reader = gguf.GGUFReader(model)

    def field(key: str):
        f = reader.fields[key]
        return f.parts[f.data[0]][0]

    eps = float(field("bert.attention.layer_norm_epsilon"))
    n_head = int(field("bert.attention.head_count"))
    n_layer = int(field("bert.block_count"))
    t = {
        x.name: np.asarray(x.data, dtype=np.float64).reshape([int(d) for d in reversed(x.shape)])
        for x in reader.tensors
    }

    def linear(x: np.ndarray, name: str) -> np.ndarray:
        return x @ t[name + ".weight"].T + t[name + ".bias"]

    n = len(tokens)
    x = t["token_embd.weight"][tokens] + t["position_embd.weight"][:n] + t["token_types.weight"][0]
    x = _layer_norm(x, t["token_embd_norm.weight"], t["token_embd_norm.bias"], eps)
    for i in range(n_layer):
        b = f"blk.{i}."
        q, k, v = (
            linear(x, b + p).reshape(n, n_head, -1).transpose(1, 0, 2) for p in ("attn_q", "attn_k", "attn_v")
        )
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        attn = (weights @ v).transpose(1, 0, 2).reshape(n, -1)
        h = _layer_norm(linear(attn, b + "attn_output") + x, t[b + "attn_output_norm.weight"],
                        t[b + "attn_output_norm.bias"], eps)  # fmt: skip
        ffn = linear(_gelu(linear(h, b + "ffn_up")), b + "ffn_down")
        x = _layer_norm(ffn + h, t[b + "layer_output_norm.weight"], t[b + "layer_output_norm.bias"], eps)
    pooled = {"mean": lambda: x.mean(0), "cls": lambda: x[0], "last": lambda: x[-1]}[pooling]()
    return pooled / np.linalg.norm(pooled) if normalize else pooled
