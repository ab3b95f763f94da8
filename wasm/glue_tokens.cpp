// py_runner glue, tokens and what a model computes for them: tokenize / detokenize / token pieces, the raw logits
// of the last position (pr_logits), pooled embeddings (pr_embed, pr_n_embd) and a reranker's scores (pr_rerank).

#include "glue_internal.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

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

// One sequence decoded alone (whatever the cache held is dropped, before and after), every token an output as
// pooling needs (and as llama.cpp's embedding example marks them); `out` gets the first n_out floats of its pooled
// output (llama_get_embeddings_seq: the embedding, or a reranker's n_cls_out scores). False, with the reason set,
// when llama.cpp fails.
static bool decode_pooled(pr_session * s, const int32_t * tokens, int n, int n_out, std::vector<float> & out) {
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
    const float * pooled = rc == 0 ? llama_get_embeddings_seq(s->ctx, 0) : nullptr;
    if (pooled) {
        out.assign(pooled, pooled + n_out);
    }
    if (!s->embedding_model) {
        llama_set_embeddings(s->ctx, false);
    }
    if (memory) {
        llama_memory_clear(memory, true);
    }
    if (!pooled) {
        set_error(rc == 0 ? "llama.cpp returned no sequence embedding" : "llama_decode failed on the text");
        return false;
    }
    return true;
}

// False, with the reason set, when n tokens do not fit the one batch a pooled sequence is decoded in.
static bool fits_one_batch(const pr_session * s, int n, const char * what) {
    const int n_ubatch = (int) llama_n_ubatch(s->ctx);
    if (n <= n_ubatch) {
        return true;
    }
    set_error(std::string(what) + " (" + std::to_string(n) + " tokens) does not fit one batch (" +
              std::to_string(n_ubatch) +
              (s->embedding_model ? ", the context size" : ": load the model with a larger batch_size") + ")");
    return false;
}

// A text's tokens as llama-server's tokenize_input_subprompt makes them (no special tokens added).
static std::vector<llama_token> tokenize_text(const pr_session * s, const std::string & text, bool parse_special) {
    std::vector<llama_token> tokens(text.size() + 8);
    int n = llama_tokenize(s->vocab, text.data(), (int32_t) text.size(), tokens.data(), (int32_t) tokens.size(), false,
                           parse_special);
    if (n < 0) {
        tokens.resize(-n);
        n = llama_tokenize(s->vocab, text.data(), (int32_t) text.size(), tokens.data(), (int32_t) tokens.size(), false,
                           parse_special);
    }
    tokens.resize(n > 0 ? n : 0);
    return tokens;
}

// A (query, document) pair as llama-server's format_prompt_rerank makes it: the model's "rerank" template with
// {query} and {document} replaced, or BOS query EOS SEP document EOS, each as the vocabulary adds them (EOS: SEP
// where the vocabulary has no EOS).
static std::vector<llama_token> rerank_tokens(const pr_session * s, const std::string & query, const std::string & doc) {
    const char * tmpl = llama_model_chat_template(s->model, "rerank");
    if (tmpl != nullptr) {
        std::string prompt = tmpl;
        for (const auto & [key, value] : {std::pair<std::string, std::string>{"{query}", query}, {"{document}", doc}}) {
            for (size_t at = prompt.find(key); at != std::string::npos; at = prompt.find(key, at + value.size())) {
                prompt.replace(at, key.size(), value);
            }
        }
        return tokenize_text(s, prompt, true);
    }
    llama_token eos = llama_vocab_eos(s->vocab);
    if (eos == LLAMA_TOKEN_NULL) {
        eos = llama_vocab_sep(s->vocab);
    }
    std::vector<llama_token> tokens;
    if (llama_vocab_get_add_bos(s->vocab)) {
        tokens.push_back(llama_vocab_bos(s->vocab));
    }
    const std::vector<llama_token> q = tokenize_text(s, query, false);
    tokens.insert(tokens.end(), q.begin(), q.end());
    if (llama_vocab_get_add_eos(s->vocab)) {
        tokens.push_back(eos);
    }
    if (llama_vocab_get_add_sep(s->vocab)) {
        tokens.push_back(llama_vocab_sep(s->vocab));
    }
    const std::vector<llama_token> d = tokenize_text(s, doc, false);
    tokens.insert(tokens.end(), d.begin(), d.end());
    if (llama_vocab_get_add_eos(s->vocab)) {
        tokens.push_back(eos);
    }
    return tokens;
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
    if (vocab_only(s)) {
        return PR_ERR_VOCAB_ONLY;
    }
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
    if (!fits_one_batch(s, n, "the text")) {
        return PR_ERR_CONTEXT_FULL;
    }
    const int n_embd = llama_model_n_embd_out(s->model);
    if (max < n_embd) {
        set_error("the output buffer holds " + std::to_string(max) + " floats, the embedding has " +
                  std::to_string(n_embd));
        return PR_ERR_DECODE;
    }
    return guarded(PR_ERR_DECODE, "embedding failed", [&] {
        std::vector<float> embd;
        if (!decode_pooled(s, tokens, n, n_embd, embd)) {
            return PR_ERR_DECODE;
        }
        // common_embd_normalize(..., 2): the Euclidean norm, as llama.cpp's embedding tool and server use.
        double sum = 0.0;
        for (int i = 0; i < n_embd; ++i) {
            sum += (double) embd[i] * embd[i];
        }
        const float scale = normalize && sum > 0.0 ? (float) (1.0 / std::sqrt(sum)) : 1.0f;
        for (int i = 0; i < n_embd; ++i) {
            out[i] = embd[i] * scale;
        }
        return n_embd;
    });
}

int pr_rerank(pr_session * s, const char * query, const char * document, float * out, int max, int * n_tokens) {
    clear_errors();
    *n_tokens = 0;
    if (vocab_only(s)) {
        return PR_ERR_VOCAB_ONLY;
    }
    if (llama_pooling_type(s->ctx) != LLAMA_POOLING_TYPE_RANK) {
        set_error("this model is not a reranker: its GGUF declares no pooling type rank (a cross-encoder with a "
                  "classification head, as llama-server runs with --reranking)");
        return PR_ERR_NOT_RERANKER;
    }
    return guarded(PR_ERR_DECODE, "reranking failed", [&] {
        const std::vector<llama_token> tokens = rerank_tokens(s, query, document);
        *n_tokens = (int) tokens.size();
        if (tokens.empty()) {
            set_error("the query and document are empty (no tokens)");
            return PR_ERR_NO_PROMPT;
        }
        if (!fits_one_batch(s, (int) tokens.size(), "the query and document")) {
            return PR_ERR_CONTEXT_FULL;
        }
        const int n_out = (int) llama_model_n_cls_out(s->model);
        std::vector<float> scores;
        if (!decode_pooled(s, tokens.data(), (int) tokens.size(), n_out, scores)) {
            return PR_ERR_DECODE;
        }
        for (int i = 0; i < n_out && i < max; ++i) {
            out[i] = scores[i];
        }
        return n_out;
    });
}

int pr_n_embd(pr_session * s) {
    return llama_model_n_embd_out(s->model);
}

}  // extern "C"
