// py_runner glue, generation: the sampler chain (pr_sampler_configure, chat grammars lazy or prefilled as
// common/sampling.cpp builds them), prompt evaluation with KV-cache reuse (pr_eval_prompt) and token-by-token
// generation (pr_next_token, pr_is_eog).

#include "glue_internal.h"

// llama.cpp's common/: common_tokenize and regex_escape for grammar triggers, common_json to read them.
#include "common.h"
#include "json.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <string>
#include <vector>

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

extern "C" {

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
                if (!has_error()) {
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

int pr_eval_prompt(pr_session * s, const int32_t * tokens, int n) {
    clear_errors();
    if (vocab_only(s)) {
        return PR_ERR_VOCAB_ONLY;
    }
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
    if (vocab_only(s)) {
        return PR_ERR_VOCAB_ONLY;
    }
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

int pr_reused_tokens(pr_session * s) {
    return s->reused;
}

int pr_is_eog(pr_session * s, int32_t token) {
    return llama_vocab_is_eog(s->vocab, token) ? 1 : 0;
}

}  // extern "C"
