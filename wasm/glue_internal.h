// What the glue's source files share (not part of the C ABI): the session, the error slot and guarded(), which keeps
// every C++ exception on this side of glue.h. Included by the glue's .cpp files only; native_main.cpp and the worker
// see glue.h alone.
#pragma once

#include "glue.h"

#include "llama.h"
// llama.cpp's chat layer (common/chat): a session keeps the templates it made from the model.
#include "chat.h"

#include <exception>
#include <string>
#include <vector>

// One session = one model + one context + one sampler (glue_session.cpp makes and frees it).
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
    ggml_type type_k = GGML_TYPE_F16, type_v = GGML_TYPE_F16;  // the KV cache's types, as the context was made
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

// --- errors (glue_session.cpp) ----------------------------------------------------------------------------------
// A session from pr_load_vocab has no context: true (and the error set) there, for the calls that need one.
bool vocab_only(const pr_session * s);
// The message pr_last_error() returns; llama.cpp's last logged error, when there is one, is appended as the cause.
void set_error(const std::string & message);
// Every entry point starts with a clean slate.
void clear_errors();
// Whether an error was set since the last clear_errors().
bool has_error();

// No C++ exception may cross the C ABI (in WebAssembly it would reach JavaScript as an opaque
// WebAssembly.Exception): every entry point that calls into llama.cpp runs its body through guarded(), which turns
// any exception into `failure` and a message for pr_last_error().
template <typename T, typename Body> T guarded(T failure, const char * what, Body && body) {
    try {
        return body();
    } catch (const std::exception & e) {
        set_error(std::string(what) + ": " + e.what());
    } catch (...) {
        set_error(std::string(what) + ": unknown exception (not a std::exception)");
    }
    return failure;
}

// --- small helpers ----------------------------------------------------------------------------------------------
// Copies `text` into a caller's buffer of `len` bytes: its byte count, or -(needed) when it does not fit.
int copy_out(const std::string & text, char * buf, int len);
// False, with the reason for pr_last_error(), when a token id is not in the vocabulary (glue_tokens.cpp).
bool tokens_in_vocab(const pr_session * s, const int32_t * tokens, int n);
// The text of a special token as a chat template sees it (common_token_to_piece(vocab, token, true)).
std::string special_piece(const llama_vocab * vocab, llama_token token);
