// py_runner glue: the C ABI of glue.h over llama.h. One session = one model + one context + one sampler.
// Modelled on llama.cpp's examples/simple/simple.cpp: each step named, everything freed in reverse.

#include "glue.h"
#include "json_text.h"

#include "llama.h"
// llama.cpp's staging API (src/, beside include/): llama_get_memory_breakdown for the load report.
#include "../src/llama-ext.h"

// llama.cpp's Jinja engine and JSON wrapper (common/jinja, common/json.h): chat templates as its own tools render them
#include "chat.h"
#include "common.h"
#include "jinja/caps.h"
#include "jinja/lexer.h"
#include "jinja/parser.h"
#include "jinja/runtime.h"
#include "json.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

static_assert(PR_POOLING_MEAN == LLAMA_POOLING_TYPE_MEAN && PR_POOLING_CLS == LLAMA_POOLING_TYPE_CLS &&
                  PR_POOLING_LAST == LLAMA_POOLING_TYPE_LAST,
              "glue.h's pooling values are llama.cpp's enum llama_pooling_type");

struct pr_session {
    llama_model * model = nullptr;
    llama_context * ctx = nullptr;
    llama_sampler * sampler = nullptr;
    const llama_vocab * vocab = nullptr;
    int n_batch = 0;
    std::vector<llama_token> cached;  // the tokens in the KV cache, in order (its positions 0..n-1)
    int reused = 0;             // how many of the last prompt's tokens came from the cache
    llama_token pending = -1;   // sampled but not yet decoded (decoded lazily by the next pr_next_token)
    bool has_logits = false;    // a prompt was evaluated, so there are logits to sample from
    bool embedding_model = false;  // the model declares a pooling type: its context only computes embeddings
    std::string metadata_json;
    // llama.cpp's chat layer (common/chat) for the model's templates, made on first use; chat_override is the
    // template source they were made with ("" = the model's own).
    common_chat_templates_ptr chat_templates;
    std::string chat_override;
    // A chat grammar enforced from the start (owned by `sampler`) and the tokens the template already wrote of the
    // reply: accepted by it again whenever the sampler is reset for a new prompt.
    llama_sampler * grammar = nullptr;
    std::vector<llama_token> grammar_prefill;
};

static std::string g_last_error;
static std::string g_last_log_error;  // llama.cpp reports the cause of a failed load through its log

static void set_error(const std::string & message) {
    g_last_error = message;
    if (!g_last_log_error.empty()) {
        g_last_error += ": " + g_last_log_error;
    }
}

static void clear_errors() {
    g_last_error.clear();
    g_last_log_error.clear();
}

// No C++ exception may cross the C ABI (in WebAssembly it would reach JavaScript as an opaque
// WebAssembly.Exception): every entry point that calls into llama.cpp runs its body through guarded(), which turns
// any exception into `failure` and a message for pr_last_error().
template <typename T, typename Body>
static T guarded(T failure, const char * what, Body && body) {
    try {
        return body();
    } catch (const std::exception & e) {
        set_error(std::string(what) + ": " + e.what());
    } catch (...) {
        set_error(std::string(what) + ": unknown exception (not a std::exception)");
    }
    return failure;
}

#ifdef __EMSCRIPTEN__
// The worker sets Module.onLoadProgress; returning false aborts the engine's load.
EM_JS(int, pr_js_load_progress, (float progress), {
    return Module["onLoadProgress"] ? (Module["onLoadProgress"](progress) ? 1 : 0) : 1;
});
#else
static int pr_js_load_progress(float) { return 1; }
#endif

static bool on_load_progress(float progress, void *) {
    return pr_js_load_progress(progress) != 0;
}

static void on_log(ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) {
        g_last_log_error = text;
        while (!g_last_log_error.empty() && g_last_log_error.back() == '\n') {
            g_last_log_error.pop_back();
        }
    }
    if (level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN) {
        fputs(text, stderr);
    }
}

// GGUF header: magic, version (u32), tensor count (u64), key/value count (u64).
static void read_gguf_header(const char * path, uint32_t & version, uint64_t & n_tensors) {
    version = 0;
    n_tensors = 0;
    FILE * f = fopen(path, "rb");
    if (!f) {
        return;
    }
    unsigned char h[16];
    if (fread(h, 1, sizeof(h), f) == sizeof(h) && memcmp(h, "GGUF", 4) == 0) {
        memcpy(&version, h + 4, 4);
        memcpy(&n_tensors, h + 8, 8);
    }
    fclose(f);
}

static std::string build_metadata_json(const pr_session * s, const char * path) {
    std::string json = "{\"meta\":{";
    std::vector<char> key(256), val(4096);
    const int n_meta = llama_model_meta_count(s->model);
    for (int i = 0; i < n_meta; ++i) {
        if (llama_model_meta_key_by_index(s->model, i, key.data(), key.size()) < 0) {
            continue;
        }
        int n = llama_model_meta_val_str_by_index(s->model, i, val.data(), val.size());
        if (n >= (int) val.size()) {  // long values (chat templates): retry with the size it asked for
            val.resize(n + 1);
            n = llama_model_meta_val_str_by_index(s->model, i, val.data(), val.size());
        }
        if (n < 0) {
            continue;
        }
        if (i > 0) {
            json += ',';
        }
        append_json_string(json, key.data());
        json += ':';
        append_json_string(json, val.data());
    }
    char desc[256];
    llama_model_desc(s->model, desc, sizeof(desc));
    uint32_t gguf_version;
    uint64_t n_tensors;
    read_gguf_header(path, gguf_version, n_tensors);

    char buf[768];
    snprintf(buf, sizeof(buf),
             "},\"n_vocab\":%d,\"n_ctx_train\":%d,\"n_embd\":%d,\"n_layer\":%d,\"n_head\":%d,\"n_head_kv\":%d,"
             "\"n_params\":%llu,\"size\":%llu,\"n_ctx\":%u,\"n_batch\":%u,\"gguf_version\":%u,\"tensor_count\":%llu,"
             "\"n_embd_out\":%d,\"pooling\":%d,\"embedding_model\":%s,\"desc\":",
             llama_vocab_n_tokens(s->vocab), llama_model_n_ctx_train(s->model), llama_model_n_embd(s->model),
             llama_model_n_layer(s->model), llama_model_n_head(s->model), llama_model_n_head_kv(s->model),
             (unsigned long long) llama_model_n_params(s->model), (unsigned long long) llama_model_size(s->model),
             llama_n_ctx(s->ctx), llama_n_batch(s->ctx), gguf_version, (unsigned long long) n_tensors,
             llama_model_n_embd_out(s->model), (int) llama_pooling_type(s->ctx),
             s->embedding_model ? "true" : "false");
    json += buf;
    append_json_string(json, desc);
    // What llama.cpp allocated, summed over buffer types: the floor the wasm heap is measured against
    // (`py-runner bench load`).
    size_t model_bytes = 0, context_bytes = 0, compute_bytes = 0;
    for (const auto & [buft, mb] : llama_get_memory_breakdown(s->ctx)) {
        model_bytes += mb.model;
        context_bytes += mb.context;
        compute_bytes += mb.compute;
    }
    snprintf(buf, sizeof(buf), ",\"memory\":{\"model\":%llu,\"context\":%llu,\"compute\":%llu}}",
             (unsigned long long) model_bytes, (unsigned long long) context_bytes,
             (unsigned long long) compute_bytes);
    json += buf;
    return json;
}

extern "C" {

int pr_init(void) {
    return guarded(-1, "backend initialisation failed", [] {
        llama_log_set(on_log, nullptr);
        llama_backend_init();
        return 0;
    });
}

const char * pr_last_error(void) {
    return g_last_error.c_str();
}

// The pooling type the model's GGUF declares (<arch>.pooling_type), or PR_POOLING_MODEL when it declares none.
static int declared_pooling(const llama_model * model) {
    char arch[64], value[32];
    if (llama_model_meta_val_str(model, "general.architecture", arch, sizeof(arch)) < 0) {
        return PR_POOLING_MODEL;
    }
    const std::string key = std::string(arch) + ".pooling_type";
    if (llama_model_meta_val_str(model, key.c_str(), value, sizeof(value)) < 0) {
        return PR_POOLING_MODEL;
    }
    return atoi(value);
}

pr_session * pr_load(const char * path, int n_ctx, int n_batch, int n_threads, int pooling) {
    clear_errors();
    pr_session * s = new pr_session();
    const bool loaded = guarded(false, "unable to load model", [&] {
        // 1. the model: read (not mmapped: mmap copies anyway in wasm) with progress
        llama_model_params model_params = llama_model_default_params();
        model_params.n_gpu_layers = 0;
        model_params.load_mode = LLAMA_LOAD_MODE_NONE;
        model_params.progress_callback = on_load_progress;
        s->model = llama_model_load_from_file(path, model_params);
        if (!s->model) {
            set_error(std::string("unable to load model from ") + path);
            return false;
        }
        s->vocab = llama_model_get_vocab(s->model);

        // 2. the context
        llama_context_params ctx_params = llama_context_default_params();
        const int model_pooling = declared_pooling(s->model);
        s->embedding_model = model_pooling > LLAMA_POOLING_TYPE_NONE;
        if (s->embedding_model) {
            // A pooled embedding is computed from one ubatch (llama_context::decode), and models with learned
            // positions (BERT) have none past n_ctx_train: one text of up to n_ctx_train tokens per batch.
            const int n_ctx_train = llama_model_n_ctx_train(s->model);
            n_ctx = n_ctx_train > 0 && n_ctx > n_ctx_train ? n_ctx_train : n_ctx;
            n_batch = n_ctx;
            ctx_params.embeddings = true;
        }
        ctx_params.pooling_type =
            pooling == PR_POOLING_MODEL ? LLAMA_POOLING_TYPE_UNSPECIFIED : (enum llama_pooling_type) pooling;
        ctx_params.n_ctx = n_ctx;
        ctx_params.n_batch = n_batch;
        ctx_params.n_ubatch = n_batch;
        ctx_params.n_threads = n_threads;
        ctx_params.n_threads_batch = n_threads;
        ctx_params.no_perf = true;
        s->ctx = llama_init_from_model(s->model, ctx_params);
        if (!s->ctx) {
            set_error("unable to create the llama_context (out of memory?)");
            return false;
        }
        s->n_batch = (int) llama_n_batch(s->ctx);

        // 3. a greedy sampler until the caller asks for another
        pr_sampler_configure(s, 0.0f, 0, 1.0f, 0.0f, 1.0f, 1.0f, 0, 0.0f, 0.0f, 0, nullptr, nullptr, 0, nullptr, nullptr, nullptr);
        s->metadata_json = build_metadata_json(s, path);
        return true;
    });
    if (loaded) {
        return s;
    }
    pr_free(s);
    return nullptr;
}

const char * pr_metadata_json(pr_session * s) {
    return s->metadata_json.c_str();
}

int pr_tokenize(pr_session * s, const char * text, int text_len, int add_special, int parse_special, int32_t * out,
                int max) {
    clear_errors();
    return guarded(PR_ERR_EXCEPTION, "tokenization failed", [&] {
        return llama_tokenize(s->vocab, text, text_len, out, max, add_special != 0, parse_special != 0);
    });
}

// False, with the reason for pr_last_error(), when a token id is not in the vocabulary: llama.cpp indexes its
// tables with them (some paths unchecked), so they are refused here rather than trusted to its exceptions.
static bool tokens_in_vocab(const pr_session * s, const int32_t * tokens, int n) {
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

static void accept_prefill(pr_session * s);  // the sampler's own below

int pr_eval_prompt(pr_session * s, const int32_t * tokens, int n) {
    clear_errors();
    return guarded(PR_ERR_DECODE, "prompt evaluation failed", [&] {
        llama_sampler_reset(s->sampler);
        accept_prefill(s);
        s->pending = -1;
        s->has_logits = false;
        s->reused = 0;
        if (s->embedding_model) {
            set_error("this is an embedding model (it declares a pooling type): it computes embeddings, not text");
            return PR_ERR_EMBEDDING_MODEL;
        }
        if (n <= 0) {
            set_error("the prompt is empty");
            return PR_ERR_NO_PROMPT;
        }
        if (n > (int) llama_n_ctx(s->ctx)) {
            set_error("the prompt (" + std::to_string(n) + " tokens) does not fit the context (" +
                      std::to_string(llama_n_ctx(s->ctx)) + ")");
            return PR_ERR_CONTEXT_FULL;
        }
        // Keep the longest common prefix in the KV cache; at least the last token is decoded again so that there
        // are logits to sample from.
        int keep = 0;
        const int limit = std::min((int) s->cached.size(), n - 1);
        while (keep < limit && s->cached[keep] == tokens[keep]) {
            ++keep;
        }
        llama_memory_t memory = llama_get_memory(s->ctx);
        if (keep == 0 || !llama_memory_seq_rm(memory, 0, keep, -1)) {
            llama_memory_clear(memory, true);  // some caches (recurrent, SWA) cannot drop a suffix
            keep = 0;
        }
        s->cached.assign(tokens, tokens + keep);
        for (int i = keep; i < n; i += s->n_batch) {
            const int n_eval = n - i < s->n_batch ? n - i : s->n_batch;
            if (llama_decode(s->ctx, llama_batch_get_one(const_cast<int32_t *>(tokens) + i, n_eval)) != 0) {
                set_error("llama_decode failed on the prompt");
                s->cached.clear();
                llama_memory_clear(memory, true);
                return PR_ERR_DECODE;
            }
            s->cached.insert(s->cached.end(), tokens + i, tokens + i + n_eval);
        }
        s->reused = keep;
        s->has_logits = true;
        return 0;
    });
}

int32_t pr_next_token(pr_session * s) {
    return guarded(PR_ERR_DECODE, "generation failed", [&]() -> int32_t {
        if (s->pending >= 0) {
            if ((int) s->cached.size() >= (int) llama_n_ctx(s->ctx)) {
                set_error("the context is full");
                return PR_ERR_CONTEXT_FULL;
            }
            llama_token token = s->pending;
            s->pending = -1;
            if (llama_decode(s->ctx, llama_batch_get_one(&token, 1)) != 0) {
                set_error("llama_decode failed");
                s->has_logits = false;
                return PR_ERR_DECODE;
            }
            s->cached.push_back(token);
        }
        if (!s->has_logits) {
            set_error("no prompt was evaluated");
            return PR_ERR_NO_PROMPT;
        }
        const llama_token token = llama_sampler_sample(s->sampler, s->ctx, -1);  // also accepts it
        if (!llama_vocab_is_eog(s->vocab, token)) {
            s->pending = token;
        }
        return token;
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

int pr_reused_tokens(pr_session * s) {
    return s->reused;
}

// A grammar enforced only once a trigger appears in the output, as llama.cpp's common/sampling.cpp builds it from
// the triggers of its chat layer: JSON [{"type", "value", "token"?}], types as common_grammar_trigger_type. A TOKEN
// trigger without a token id is its text's token when that is one token (as llama-server resolves it), else a word.
static llama_sampler * lazy_grammar(const llama_vocab * vocab, const char * grammar, const char * triggers_json) {
    std::vector<std::string> patterns;
    std::vector<llama_token> tokens;
    for (const auto & trigger : common_json::parse(triggers_json)) {
        const int type = trigger.at("type").get<int>();
        const std::string value = trigger.contains("value") ? trigger.at("value").get<std::string>() : "";
        if (type == COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN) {
            if (trigger.contains("token")) {
                tokens.push_back(trigger.at("token").get<int>());
                continue;
            }
            const std::vector<llama_token> ids = common_tokenize(vocab, value, false, true);
            if (ids.size() == 1) {
                tokens.push_back(ids[0]);
                continue;
            }
            patterns.push_back(regex_escape(value));
        } else if (type == COMMON_GRAMMAR_TRIGGER_TYPE_WORD) {
            patterns.push_back(regex_escape(value));
        } else if (type == COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN) {
            patterns.push_back(value);
        } else if (type == COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL) {
            std::string anchored = value.empty() ? "^$" : value;
            if (!value.empty() && anchored.front() != '^') anchored = "^" + anchored;
            if (!value.empty() && anchored.back() != '$') anchored += "$";
            patterns.push_back(anchored);
        } else {
            throw std::invalid_argument("unknown grammar trigger type " + std::to_string(type));
        }
    }
    std::vector<const char *> pattern_ptrs;
    for (const auto & p : patterns) {
        pattern_ptrs.push_back(p.c_str());
    }
    return llama_sampler_init_grammar_lazy_patterns(vocab, grammar, "root", pattern_ptrs.data(), pattern_ptrs.size(),
                                                    tokens.data(), tokens.size());
}

static std::string special_piece(const llama_vocab * vocab, llama_token token);

// The tokens of what a chat template already wrote of the reply, as common/sampling.cpp (common_sampler_init)
// feeds them to a chat grammar: a first token whose piece starts with a space the text does not have is one some
// tokenizers add before a special token, and is left out.
static std::vector<llama_token> prefill_tokens(const pr_session * s, const std::string & prefill) {
    std::vector<llama_token> tokens(prefill.size() + 8);
    int n = llama_tokenize(s->vocab, prefill.data(), (int32_t) prefill.size(), tokens.data(), (int32_t) tokens.size(),
                           false, true);
    if (n < 0) {
        tokens.resize(-n);
        n = llama_tokenize(s->vocab, prefill.data(), (int32_t) prefill.size(), tokens.data(), (int32_t) tokens.size(),
                           false, true);
    }
    tokens.resize(n > 0 ? n : 0);
    if (!tokens.empty()) {
        const std::string piece = special_piece(s->vocab, tokens[0]);
        if (!piece.empty() && std::isspace((unsigned char) piece[0]) && !std::isspace((unsigned char) prefill[0])) {
            tokens.erase(tokens.begin());
        }
    }
    return tokens;
}

// After a reset (a new prompt), the grammar is where it was once the template's own text was accepted. A grammar
// that refuses that text throws (llama.cpp's grammar sampler does), caught as an invalid grammar.
static void accept_prefill(pr_session * s) {
    for (const llama_token token : s->grammar_prefill) {
        llama_sampler_accept(s->grammar, token);
    }
}

int pr_sampler_configure(pr_session * s, float temp, int top_k, float top_p, float min_p, float typical_p,
                         float repeat_penalty, int repeat_last_n, float frequency_penalty, float presence_penalty,
                         uint32_t seed, const int32_t * bias_tokens, const float * bias_values, int n_bias,
                         const char * grammar, const char * grammar_triggers, const char * grammar_prefill) {
    clear_errors();
    llama_sampler * chain = nullptr;  // freed here unless it was installed
    const int rc = guarded(-1, "sampler configuration failed", [&] {
        llama_sampler_chain_params chain_params = llama_sampler_chain_default_params();
        chain_params.no_perf = true;
        chain = llama_sampler_chain_init(chain_params);
        const int32_t n_vocab = llama_vocab_n_tokens(s->vocab);
        llama_sampler * grammar_sampler = nullptr;
        std::vector<llama_token> prefill;
        if (n_bias > 0) {
            std::vector<llama_logit_bias> bias(n_bias);
            for (int i = 0; i < n_bias; ++i) {
                bias[i] = {bias_tokens[i], bias_values[i]};
            }
            llama_sampler_chain_add(chain, llama_sampler_init_logit_bias(n_vocab, n_bias, bias.data()));
        }
        if (repeat_last_n != 0 && (repeat_penalty != 1.0f || frequency_penalty != 0.0f || presence_penalty != 0.0f)) {
            const int32_t last_n = repeat_last_n < 0 ? (int32_t) llama_n_ctx(s->ctx) : repeat_last_n;
            llama_sampler_chain_add(chain, llama_sampler_init_penalties(n_vocab, last_n, repeat_penalty,
                                                                        frequency_penalty, presence_penalty));
        }
        if (grammar && grammar[0]) {
            llama_sampler * constrained = guarded<llama_sampler *>(nullptr, "invalid grammar", [&] {
                if (grammar_triggers && grammar_triggers[0]) {
                    return lazy_grammar(s->vocab, grammar, grammar_triggers);
                }
                return llama_sampler_init_grammar(s->vocab, grammar, "root");
            });
            if (!constrained) {
                if (g_last_error.empty()) {
                    set_error("invalid grammar");
                }
                return -1;
            }
            llama_sampler_chain_add(chain, constrained);
            if (!(grammar_triggers && grammar_triggers[0]) && grammar_prefill && grammar_prefill[0]) {
                prefill = prefill_tokens(s, grammar_prefill);
                grammar_sampler = constrained;
            }
        }
        if (temp <= 0.0f) {
            llama_sampler_chain_add(chain, llama_sampler_init_greedy());
        } else {
            if (top_k > 0) {
                llama_sampler_chain_add(chain, llama_sampler_init_top_k(top_k));
            }
            if (typical_p < 1.0f) {
                llama_sampler_chain_add(chain, llama_sampler_init_typical(typical_p, 1));
            }
            if (top_p < 1.0f) {
                llama_sampler_chain_add(chain, llama_sampler_init_top_p(top_p, 1));
            }
            if (min_p > 0.0f) {
                llama_sampler_chain_add(chain, llama_sampler_init_min_p(min_p, 1));
            }
            llama_sampler_chain_add(chain, llama_sampler_init_temp(temp));
            llama_sampler_chain_add(chain, llama_sampler_init_dist(seed));
        }
        for (const llama_token token : prefill) {
            llama_sampler_accept(grammar_sampler, token);  // now: a grammar that refuses it fails here (and is freed)
        }
        if (s->sampler) {
            llama_sampler_free(s->sampler);
        }
        s->sampler = chain;
        chain = nullptr;
        s->grammar = grammar_sampler;
        s->grammar_prefill = prefill;
        return 0;
    });
    if (chain) {
        llama_sampler_free(chain);
    }
    return rc;
}

// The text of a special token as a chat template sees it (common_token_to_piece(vocab, token, true)).
static std::string special_piece(const llama_vocab * vocab, llama_token token) {
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

static bool is_jinja(const char * tmpl) {
    return strstr(tmpl, "{{") != nullptr || strstr(tmpl, "{%") != nullptr;
}

// A plain chat through a Jinja template, as llama.cpp's server renders it (common/chat.cpp,
// common_chat_template_direct_apply): the template's capabilities decide whether a message's content is a string
// or a list of typed parts, and a BOS/EOS the template writes itself is dropped when the tokenizer adds it anyway.
static std::string render_jinja_chat(const pr_session * s, const std::string & source, const char ** roles,
                                     const char ** contents, int n, bool add_assistant) {
    jinja::lexer lexer;
    const jinja::lexer_result lexed = lexer.tokenize(source);
    jinja::program program = jinja::parse_from_tokens(lexed);
    const jinja::caps caps = jinja::caps_get(program);
    const bool typed_content_only = caps.supports_typed_content && !caps.supports_string_content;

    common_json messages = common_json::array();
    for (int i = 0; i < n; ++i) {
        common_json message = common_json::object();
        message["role"] = roles[i];
        if (typed_content_only) {
            message["content"] = common_json::array({common_json{{"type", "text"}, {"text", contents[i]}}});
        } else {
            message["content"] = contents[i];
        }
        messages.push_back(message);
    }
    const std::string bos = special_piece(s->vocab, llama_vocab_bos(s->vocab));
    const std::string eos = special_piece(s->vocab, llama_vocab_eos(s->vocab));
    common_json input = common_json::object();
    input["messages"] = messages;
    input["bos_token"] = bos;
    input["eos_token"] = eos;
    input["enable_thinking"] = true;
    if (add_assistant) {
        input["add_generation_prompt"] = true;
    }

    jinja::context ctx(lexed.source);
    jinja::global_from_json(ctx, input, true);
    jinja::runtime runtime(ctx);
    const jinja::value results = runtime.execute(program);
    std::string text = jinja::runtime::gather_string_parts(results)->as_string().str();
    if (llama_vocab_get_add_bos(s->vocab) && !bos.empty() && text.compare(0, bos.size(), bos) == 0) {
        text.erase(0, bos.size());
    }
    if (llama_vocab_get_add_eos(s->vocab) && !eos.empty() && text.size() >= eos.size() &&
        text.compare(text.size() - eos.size(), eos.size(), eos) == 0) {
        text.erase(text.size() - eos.size());
    }
    return text;
}

int pr_chat_format(pr_session * s, const char * tmpl, const char ** roles, const char ** contents, int n,
                   int add_assistant, char * buf, int len) {
    clear_errors();
    jinja::reset_budget();  // each request gets the whole work budget (wasm/patches/0002-jinja-bounded-render)
    return guarded(PR_ERR_TEMPLATE, "chat template failed", [&]() -> int {
        const char * chosen = tmpl ? tmpl : llama_model_chat_template(s->model, nullptr);
        if (!chosen) {
            set_error("the model has no chat template");
            return PR_ERR_TEMPLATE;
        }
        std::string text;
        std::string jinja_error;  // the model's own template falls back to the built-in list, as llama.cpp's does
        bool rendered = false;
        if (is_jinja(chosen)) {
            try {
                text = render_jinja_chat(s, chosen, roles, contents, n, add_assistant != 0);
                rendered = true;
            } catch (const std::exception & e) {
                if (tmpl) {
                    throw;  // a template the caller chose: say why it failed
                }
                jinja_error = e.what();
            }
        }
        if (!rendered) {
            std::vector<llama_chat_message> chat(n);
            for (int i = 0; i < n; ++i) {
                chat[i] = {roles[i], contents[i]};
            }
            const int32_t needed = llama_chat_apply_template(chosen, chat.data(), chat.size(), add_assistant != 0,
                                                             nullptr, 0);
            if (needed < 0) {
                set_error(jinja_error.empty()
                              ? "the chat template is not one of llama.cpp's built-in templates"
                              : "the chat template does not render (" + jinja_error +
                                    ") and is not one of llama.cpp's built-in templates");
                return PR_ERR_TEMPLATE;
            }
            text.resize(needed);
            llama_chat_apply_template(chosen, chat.data(), chat.size(), add_assistant != 0, text.data(), needed);
        }
        if ((int) text.size() > len) {
            return -(int) text.size();
        }
        memcpy(buf, text.data(), text.size());
        return (int) text.size();
    });
}

static int copy_out(const std::string & text, char * buf, int len) {
    if ((int) text.size() > len) {
        return -(int) text.size();
    }
    memcpy(buf, text.data(), text.size());
    return (int) text.size();
}

static const common_chat_templates * chat_templates_for(pr_session * s, const std::string & override_source) {
    if (!s->chat_templates || s->chat_override != override_source) {
        s->chat_templates = common_chat_templates_init(s->model, override_source);
        s->chat_override = override_source;
    }
    return s->chat_templates.get();
}

int pr_chat_apply(pr_session * s, const char * request_json, char * buf, int len) {
    clear_errors();
    jinja::reset_budget();
    return guarded(PR_ERR_TEMPLATE, "chat template failed", [&]() -> int {
        // The inputs as llama.cpp's server builds them from an OpenAI request (tools/server/server-common.cpp).
        const common_json body = common_json::parse(request_json);
        const std::string override_source = body.contains("template") && body.at("template").is_string()
                                                ? body.at("template").get<std::string>()
                                                : "";
        const common_chat_templates * tmpls = chat_templates_for(s, override_source);
        common_chat_templates_inputs inputs;
        inputs.messages = common_chat_msgs_parse_oaicompat(body.at("messages"));
        if (body.contains("tools") && !body.at("tools").is_null()) {
            inputs.tools = common_chat_tools_parse_oaicompat(body.at("tools"));
        }
        if (body.contains("tool_choice") && body.at("tool_choice").is_string()) {
            inputs.tool_choice = common_chat_tool_choice_parse_oaicompat(body.at("tool_choice").get<std::string>());
        }
        inputs.parallel_tool_calls = body.contains("parallel_tool_calls") && body.at("parallel_tool_calls").get<bool>();
        inputs.add_generation_prompt = !body.contains("add_generation_prompt") ||
                                       body.at("add_generation_prompt").get<bool>();
        inputs.use_jinja = true;
        const common_chat_params params = common_chat_templates_apply(tmpls, inputs);

        common_json out = common_json::object();
        out["prompt"] = params.prompt;
        out["format"] = (int) params.format;
        out["format_name"] = std::string(common_chat_format_name(params.format));
        out["grammar"] = params.grammar;
        out["grammar_lazy"] = params.grammar_lazy;
        out["generation_prompt"] = params.generation_prompt;
        out["additional_stops"] = params.additional_stops;
        out["preserved_tokens"] = params.preserved_tokens;
        out["parser"] = params.parser;
        common_json triggers = common_json::array();
        for (const auto & trigger : params.grammar_triggers) {
            common_json t = common_json::object();
            t["type"] = (int) trigger.type;
            t["value"] = trigger.value;
            triggers.push_back(t);
        }
        out["grammar_triggers"] = triggers;
        return copy_out(out.dump(), buf, len);
    });
}

int pr_chat_parse(pr_session * s, const char * state_json, const char * text, int text_len, char * buf, int len) {
    clear_errors();
    (void) s;
    return guarded(PR_ERR_TEMPLATE, "parsing the reply failed", [&]() -> int {
        // The reply parsed as llama.cpp's server parses a finished one (common_chat_parse, not partial).
        const common_json state = common_json::parse(state_json);
        common_chat_parser_params params;
        params.format = (common_chat_format) state.at("format").get<int>();
        params.generation_prompt = state.at("generation_prompt").get<std::string>();
        params.parse_tool_calls = true;
        const std::string parser = state.at("parser").get<std::string>();
        if (!parser.empty()) {
            params.parser.load(parser);
        }
        const common_chat_msg msg = common_chat_parse(std::string(text, (size_t) text_len), false, params);
        return copy_out(msg.to_json_oaicompat().dump(), buf, len);
    });
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

int pr_is_eog(pr_session * s, int32_t token) {
    return llama_vocab_is_eog(s->vocab, token) ? 1 : 0;
}

void pr_set_threads(pr_session * s, int n_threads) {
    llama_set_n_threads(s->ctx, n_threads, n_threads);
}

void pr_free(pr_session * s) {
    if (!s) {
        return;
    }
    s->chat_templates.reset();  // made from the model: freed before it
    if (s->sampler) {
        llama_sampler_free(s->sampler);
    }
    if (s->ctx) {
        llama_free(s->ctx);
    }
    if (s->model) {
        llama_model_free(s->model);
    }
    delete s;
}

int pr_quantize(const char * in_path, const char * out_path, const char * type) {
    llama_model_quantize_params params = llama_model_quantize_default_params();
    params.allow_requantize = true;  // a quantized model (the default Q4_1 one) to another type, for comparisons
    if (strcmp(type, "q8_0") == 0) {
        params.ftype = LLAMA_FTYPE_MOSTLY_Q8_0;
    } else if (strcmp(type, "q4_k_m") == 0) {
        params.ftype = LLAMA_FTYPE_MOSTLY_Q4_K_M;
    } else {
        set_error(std::string("unsupported quantization type ") + type);
        return 1;
    }
    return guarded(1, "quantize failed", [&] { return (int) llama_model_quantize(in_path, out_path, &params); });
}

}  // extern "C"
