// py_runner glue, tokens and what a model computes for them: tokenize / detokenize / token pieces, the raw logits
// of the last position (pr_logits) and pooled embeddings (pr_embed, pr_n_embd).

#include "glue_internal.h"

#include <cmath>
#include <string>

// False, with the reason for pr_last_error(), when a token id is not in the vocabulary: llama.cpp indexes its
// tables with them (some paths unchecked), so they are refused here rather than trusted to its exceptions.
bool tokens_in_vocab(const pr_session * s, const int32_t * tokens, int n) {
    const int32_t n_vocab = llama_vocab_n_tokens(s->vocab);
    for (int i = 0; i < n; ++i) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab) {
            set_error("token id " + std::to_string(tokens[i]) + " (at " + std::to_string(i) +
                      ") is not in the vocabulary (0.." + std::to_string(n_vocab - 1) + ")");
            return false;
        }
    }
    return true;
}

std::string special_piece(const llama_vocab * vocab, llama_token token) {
    if (token == LLAMA_TOKEN_NULL) {
        return "";
    }
    std::string piece(64, '\0');
    int n = llama_token_to_piece(vocab, token, piece.data(), (int32_t) piece.size(), 0, true);
    if (n < 0) {
        piece.resize(-n);
        n = llama_token_to_piece(vocab, token, piece.data(), (int32_t) piece.size(), 0, true);
    }
    piece.resize(n > 0 ? n : 0);
    return piece;
}

extern "C" {

int pr_tokenize(pr_session * s, const char * text, int text_len, int add_special, int parse_special, int32_t * out,
                int max) {
    clear_errors();
    return guarded(PR_ERR_EXCEPTION, "tokenization failed", [&] {
        return llama_tokenize(s->vocab, text, text_len, out, max, add_special != 0, parse_special != 0);
    });
}

int pr_token_to_piece(pr_session * s, int32_t token, char * buf, int len) {
    clear_errors();
    if (!tokens_in_vocab(s, &token, 1)) {
        return PR_ERR_EXCEPTION;
    }
    return guarded(PR_ERR_EXCEPTION, "token_to_piece failed",
                   [&] { return llama_token_to_piece(s->vocab, token, buf, len, 0, true); });
}

int pr_detokenize(pr_session * s, const int32_t * tokens, int n, char * buf, int len, int remove_special,
                  int unparse_special) {
    clear_errors();
    if (!tokens_in_vocab(s, tokens, n)) {
        return PR_ERR_EXCEPTION;
    }
    return guarded(PR_ERR_EXCEPTION, "detokenization failed", [&] {
        return llama_detokenize(s->vocab, tokens, n, buf, len, remove_special != 0, unparse_special != 0);
    });
}

const float * pr_logits(pr_session * s, int * n_vocab) {
    *n_vocab = llama_vocab_n_tokens(s->vocab);
    if (!s->has_logits) {
        set_error("no prompt was evaluated");
        return nullptr;
    }
    return guarded<const float *>(nullptr, "no logits", [&] { return llama_get_logits_ith(s->ctx, -1); });
}

int pr_embed(pr_session * s, const int32_t * tokens, int n, int normalize, float * out, int max) {
    clear_errors();
    const enum llama_pooling_type pooling = llama_pooling_type(s->ctx);
    if (pooling == LLAMA_POOLING_TYPE_NONE || pooling == LLAMA_POOLING_TYPE_RANK) {
        set_error(pooling == LLAMA_POOLING_TYPE_RANK
                      ? "this is a reranking model (pooling type rank): it scores, it does not embed"
                      : "the model declares no pooling type (it is not an embedding model): load it with a pooling "
                        "type (mean, cls or last) to embed with it");
        return PR_ERR_NO_POOLING;
    }
    if (n <= 0) {
        set_error("the text is empty (no tokens)");
        return PR_ERR_NO_PROMPT;
    }
    const int n_ubatch = (int) llama_n_ubatch(s->ctx);
    if (n > n_ubatch) {
        set_error("the text (" + std::to_string(n) + " tokens) does not fit one batch (" + std::to_string(n_ubatch) +
                  (s->embedding_model ? ", the context size" : ": load the model with a larger batch_size") + ")");
        return PR_ERR_CONTEXT_FULL;
    }
    const int n_embd = llama_model_n_embd_out(s->model);
    if (max < n_embd) {
        set_error("the output buffer holds " + std::to_string(max) + " floats, the embedding has " +
                  std::to_string(n_embd));
        return PR_ERR_DECODE;
    }
    return guarded(PR_ERR_DECODE, "embedding failed", [&] {
        // The sequence is evaluated alone: whatever the cache held (an earlier prompt) is dropped.
        s->cached.clear();
        s->pending = -1;
        s->has_logits = false;
        llama_memory_t memory = llama_get_memory(s->ctx);
        if (memory) {
            llama_memory_clear(memory, true);
        }
        if (!s->embedding_model) {
            llama_set_embeddings(s->ctx, true);  // a generative model embeds only for this call
        }
        // Every token is an output, as pooling needs (and as llama.cpp's embedding example marks them).
        llama_batch batch = llama_batch_init(n, 0, 1);
        for (int i = 0; i < n; ++i) {
            batch.token[i] = tokens[i];
            batch.pos[i] = i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = 1;
        }
        batch.n_tokens = n;
        const int rc = llama_decode(s->ctx, batch);
        llama_batch_free(batch);
        const float * embd = rc == 0 ? llama_get_embeddings_seq(s->ctx, 0) : nullptr;
        if (embd) {
            // common_embd_normalize(..., 2): the Euclidean norm, as llama.cpp's embedding tool and server use.
            double sum = 0.0;
            for (int i = 0; i < n_embd; ++i) {
                sum += (double) embd[i] * embd[i];
            }
            const float scale = normalize && sum > 0.0 ? (float) (1.0 / std::sqrt(sum)) : 1.0f;
            for (int i = 0; i < n_embd; ++i) {
                out[i] = embd[i] * scale;
            }
        }
        if (!s->embedding_model) {
            llama_set_embeddings(s->ctx, false);
        }
        if (memory) {
            llama_memory_clear(memory, true);
        }
        if (!embd) {
            set_error(rc == 0 ? "llama.cpp returned no sequence embedding" : "llama_decode failed on the text");
            return PR_ERR_DECODE;
        }
        return n_embd;
    });
}

int pr_n_embd(pr_session * s) {
    return llama_model_n_embd_out(s->model);
}

}  // extern "C"
