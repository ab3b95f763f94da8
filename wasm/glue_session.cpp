// py_runner glue, the session: initialisation, errors, pr_load (model, context, greedy sampler, metadata report),
// pr_free and the native-only quantizer. The other entry points of glue.h live beside it: glue_generate.cpp
// (prompt, sampling, generation), glue_tokens.cpp (tokens, logits, embeddings), glue_chat.cpp (chat templates).
// Modelled on llama.cpp's examples/simple/simple.cpp: each step named, everything freed in reverse.

#include "glue_internal.h"
#include "json_text.h"

// llama.cpp's staging API (src/, beside include/): llama_get_memory_breakdown for the load report.
#include "../src/llama-ext.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static_assert(PR_POOLING_MEAN == LLAMA_POOLING_TYPE_MEAN && PR_POOLING_CLS == LLAMA_POOLING_TYPE_CLS &&
                  PR_POOLING_LAST == LLAMA_POOLING_TYPE_LAST && PR_POOLING_RANK == LLAMA_POOLING_TYPE_RANK,
              "glue.h's pooling values are llama.cpp's enum llama_pooling_type");
static_assert(PR_CACHE_TYPE_F32 == GGML_TYPE_F32 && PR_CACHE_TYPE_F16 == GGML_TYPE_F16 &&
                  PR_CACHE_TYPE_Q4_0 == GGML_TYPE_Q4_0 && PR_CACHE_TYPE_Q4_1 == GGML_TYPE_Q4_1 &&
                  PR_CACHE_TYPE_Q5_0 == GGML_TYPE_Q5_0 && PR_CACHE_TYPE_Q5_1 == GGML_TYPE_Q5_1 &&
                  PR_CACHE_TYPE_Q8_0 == GGML_TYPE_Q8_0 && PR_CACHE_TYPE_IQ4_NL == GGML_TYPE_IQ4_NL &&
                  PR_CACHE_TYPE_BF16 == GGML_TYPE_BF16,
              "glue.h's cache types are ggml's enum ggml_type");

// The KV cache types a caller may ask for (the PR_CACHE_TYPE_* of glue.h).
static bool is_cache_type(int type) {
    switch (type) {
        case PR_CACHE_TYPE_F32: case PR_CACHE_TYPE_F16: case PR_CACHE_TYPE_BF16: case PR_CACHE_TYPE_Q8_0:
        case PR_CACHE_TYPE_Q4_0: case PR_CACHE_TYPE_Q4_1: case PR_CACHE_TYPE_Q5_0: case PR_CACHE_TYPE_Q5_1:
        case PR_CACHE_TYPE_IQ4_NL:
            return true;
        default:
            return false;
    }
}

static std::string g_last_error;
static std::string g_last_log_error;  // llama.cpp reports the cause of a failed load through its log

void set_error(const std::string & message) {
    g_last_error = message;
    if (!g_last_log_error.empty()) {
        g_last_error += ": " + g_last_log_error;
    }
}

void clear_errors() {
    g_last_error.clear();
    g_last_log_error.clear();
}

bool has_error() {
    return !g_last_error.empty();
}

int copy_out(const std::string & text, char * buf, int len) {
    if ((int) text.size() > len) {
        return -(int) text.size();
    }
    memcpy(buf, text.data(), text.size());
    return (int) text.size();
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

    // a vocabulary-only GGUF has no layers, and llama.cpp aborts when asked for layer 0's head counts
    const int n_layer = llama_model_n_layer(s->model);
    char buf[896];
    snprintf(buf, sizeof(buf),
             "},\"n_vocab\":%d,\"n_ctx_train\":%d,\"n_embd\":%d,\"n_layer\":%d,\"n_head\":%d,\"n_head_kv\":%d,"
             "\"n_params\":%llu,\"size\":%llu,\"n_ctx\":%u,\"n_batch\":%u,\"gguf_version\":%u,\"tensor_count\":%llu,"
             "\"n_embd_out\":%d,\"pooling\":%d,\"embedding_model\":%s,\"recurrent\":%s,\"hybrid\":%s,"
             "\"type_k\":\"%s\",\"type_v\":\"%s\",\"desc\":",
             llama_vocab_n_tokens(s->vocab), llama_model_n_ctx_train(s->model), llama_model_n_embd(s->model),
             n_layer, n_layer > 0 ? llama_model_n_head(s->model) : 0, n_layer > 0 ? llama_model_n_head_kv(s->model) : 0,
             (unsigned long long) llama_model_n_params(s->model), (unsigned long long) llama_model_size(s->model),
             s->ctx ? llama_n_ctx(s->ctx) : 0u, s->ctx ? llama_n_batch(s->ctx) : 0u, gguf_version,
             (unsigned long long) n_tensors, llama_model_n_embd_out(s->model),
             s->ctx ? (int) llama_pooling_type(s->ctx) : PR_POOLING_MODEL,
             s->embedding_model ? "true" : "false", llama_model_is_recurrent(s->model) ? "true" : "false",
             llama_model_is_hybrid(s->model) ? "true" : "false", ggml_type_name(s->type_k), ggml_type_name(s->type_v));
    json += buf;
    append_json_string(json, desc);
    // What llama.cpp allocated, summed over buffer types: the floor the wasm heap is measured against
    // (`py-runner bench load`).
    size_t model_bytes = 0, context_bytes = 0, compute_bytes = 0;
    if (s->ctx) {  // a vocab-only session allocated neither
        for (const auto & [buft, mb] : llama_get_memory_breakdown(s->ctx)) {
            model_bytes += mb.model;
            context_bytes += mb.context;
            compute_bytes += mb.compute;
        }
    }
    snprintf(buf, sizeof(buf), ",\"memory\":{\"model\":%llu,\"context\":%llu,\"compute\":%llu}}",
             (unsigned long long) model_bytes, (unsigned long long) context_bytes,
             (unsigned long long) compute_bytes);
    json += buf;
    return json;
}

bool vocab_only(const pr_session * s) {
    if (s->ctx) {
        return false;
    }
    set_error("the model was loaded vocab_only (its tokenizer alone): load it without vocab_only to evaluate text");
    return true;
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

pr_session * pr_load(const char * path, int n_ctx, int n_batch, int n_threads, int pooling, int type_k, int type_v) {
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
        for (const int type : {type_k, type_v}) {
            if (type != PR_CACHE_TYPE_DEFAULT && !is_cache_type(type)) {
                set_error("unsupported KV cache type " + std::to_string(type));
                return false;
            }
        }
        if (type_k != PR_CACHE_TYPE_DEFAULT) {
            ctx_params.type_k = (enum ggml_type) type_k;
        }
        if (type_v != PR_CACHE_TYPE_DEFAULT) {
            ctx_params.type_v = (enum ggml_type) type_v;
        }
        s->type_k = ctx_params.type_k;
        s->type_v = ctx_params.type_v;
        s->ctx = llama_init_from_model(s->model, ctx_params);
        if (!s->ctx) {
            // llama.cpp logs why: an allocation that failed, or a setting it refuses (a quantized KV cache type
            // whose block does not divide the head size); only a silent failure is guessed to be memory
            set_error(g_last_log_error.empty() ? "unable to create the llama_context (out of memory?)"
                                               : "unable to create the llama_context");
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

pr_session * pr_load_vocab(const char * path) {
    clear_errors();
    pr_session * s = new pr_session();
    const bool loaded = guarded(false, "unable to load the vocabulary", [&] {
        llama_model_params model_params = llama_model_default_params();
        model_params.vocab_only = true;
        model_params.load_mode = LLAMA_LOAD_MODE_NONE;
        s->model = llama_model_load_from_file(path, model_params);
        if (!s->model) {
            set_error(std::string("unable to load the vocabulary from ") + path);
            return false;
        }
        s->vocab = llama_model_get_vocab(s->model);
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

void pr_set_threads(pr_session * s, int n_threads) {
    if (s->ctx) {
        llama_set_n_threads(s->ctx, n_threads, n_threads);
    }
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
