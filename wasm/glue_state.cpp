// py_runner glue, saved state: the KV cache of the tokens a session holds, written out and read back
// (llama_state_seq_get_data / llama_state_seq_set_data of sequence 0) beside the token list pr_eval_prompt keeps, so
// a conversation survives a page reload without its prompt being evaluated again.

#include "glue_internal.h"

#include <string>

extern "C" {

int pr_state_tokens(pr_session * s, int32_t * out, int max) {
    const int n = (int) s->cached.size();
    if (max < n) {
        return -n;
    }
    for (int i = 0; i < n; ++i) {
        out[i] = s->cached[i];
    }
    return n;
}

int pr_state_size(pr_session * s) {
    clear_errors();
    if (vocab_only(s)) {
        return PR_ERR_VOCAB_ONLY;
    }
    return guarded(PR_ERR_STATE, "saving the state failed", [&] {
        const size_t size = llama_state_seq_get_size(s->ctx, 0);
        if (size > (size_t) INT32_MAX) {
            set_error("the state (" + std::to_string(size) + " bytes) is larger than 2 GiB");
            return PR_ERR_STATE;
        }
        return (int) size;
    });
}

int pr_state_save(pr_session * s, uint8_t * buf, int len) {
    clear_errors();
    if (vocab_only(s)) {
        return PR_ERR_VOCAB_ONLY;
    }
    return guarded(PR_ERR_STATE, "saving the state failed", [&] {
        const size_t written = llama_state_seq_get_data(s->ctx, buf, (size_t) len, 0);
        if (written == 0 && !s->cached.empty()) {
            set_error("llama.cpp wrote no state (the buffer holds " + std::to_string(len) + " bytes)");
            return PR_ERR_STATE;
        }
        return (int) written;
    });
}

int pr_state_load(pr_session * s, const uint8_t * buf, int len, const int32_t * tokens, int n) {
    clear_errors();
    if (vocab_only(s)) {
        return PR_ERR_VOCAB_ONLY;
    }
    return guarded(PR_ERR_STATE, "restoring the state failed", [&] {
        s->pending = -1;
        s->has_logits = false;
        s->reused = 0;
        s->cached.clear();
        if (s->embedding_model) {
            set_error("this is an embedding model (it declares a pooling type): it keeps no conversation state");
            return PR_ERR_EMBEDDING_MODEL;
        }
        if (n < 0 || n > (int) llama_n_ctx(s->ctx)) {
            set_error("the state holds " + std::to_string(n) + " tokens, the context " +
                      std::to_string(llama_n_ctx(s->ctx)));
            return PR_ERR_CONTEXT_FULL;
        }
        if (!tokens_in_vocab(s, tokens, n)) {
            return PR_ERR_STATE;
        }
        llama_memory_t memory = llama_get_memory(s->ctx);
        llama_memory_clear(memory, true);
        if (n == 0) {
            return 0;
        }
        // llama.cpp refuses a state whose layers, cell count or K/V types do not match this context (and logs why,
        // which set_error appends); a state of another model with the same shapes is the caller's to refuse.
        if (llama_state_seq_set_data(s->ctx, buf, (size_t) len, 0) == 0) {
            llama_memory_clear(memory, true);
            set_error("llama.cpp refused the state: it was saved with another model, context or KV cache type");
            return PR_ERR_STATE;
        }
        const llama_pos last = llama_memory_seq_pos_max(memory, 0);
        if (last + 1 != n) {
            llama_memory_clear(memory, true);
            set_error("the state holds " + std::to_string(last + 1) + " positions, its token list " +
                      std::to_string(n));
            return PR_ERR_STATE;
        }
        s->cached.assign(tokens, tokens + n);
        return 0;
    });
}

}  // extern "C"
