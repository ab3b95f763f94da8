// py_runner glue: a small C ABI over llama.h, shared by the WebAssembly builds and the native reference.
// Every function catches C++ exceptions: failures come back as NULL / negative values and pr_last_error() says why.
#pragma once

#include <stdint.h>

#ifdef __EMSCRIPTEN__
#include <emscripten/emscripten.h>
#define PR_API EMSCRIPTEN_KEEPALIVE
#else
#define PR_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pr_session pr_session;

PR_API int pr_init(void);
PR_API const char * pr_last_error(void);

// pooling: PR_POOLING_MODEL keeps the model's own pooling type, else PR_POOLING_MEAN / _CLS / _LAST for embeddings
// of a model that declares none. A model that declares a pooling type is an embedding
// model: its context computes embeddings only, holds at most n_ctx_train tokens and takes a whole text per batch.
// type_k, type_v: the KV cache's types (PR_CACHE_TYPE_*; PR_CACHE_TYPE_DEFAULT is llama.cpp's F16).
PR_API pr_session * pr_load(const char * path, int n_ctx, int n_batch, int n_threads, int pooling, int type_k,
                            int type_v);
// A tokenizer-only session (llama-cpp-python's vocab_only=True: llama_model_params.vocab_only): the vocabulary and
// the GGUF's key/values are read, no tensor and no context; tokenize, detokenize, chat formatting and metadata work,
// and every call that needs a context returns PR_ERR_VOCAB_ONLY.
PR_API pr_session * pr_load_vocab(const char * path);
PR_API const char * pr_metadata_json(pr_session * s);

// Texts come with their byte length, as llama_tokenize takes them: a NUL is an ordinary character, never the end.
PR_API int pr_tokenize(pr_session * s, const char * text, int text_len, int add_special, int parse_special, int32_t * out,
                       int max);
PR_API int pr_token_to_piece(pr_session * s, int32_t token, char * buf, int len);
// Text of a token sequence (llama_detokenize): byte count, or -(needed) if len is too small.
PR_API int pr_detokenize(pr_session * s, const int32_t * tokens, int n, char * buf, int len, int remove_special,
                         int unparse_special);

// The full chain, in llama.cpp's order: logit bias, penalties, grammar (GBNF, root "root"; NULL or "" = none),
// top-k, typical-p, top-p, min-p, temperature, then dist(seed) — or greedy when temp <= 0. grammar_triggers (JSON
// of llama.cpp's chat-layer triggers, NULL or "" = none) makes the grammar lazy: enforced from the first trigger.
// Otherwise grammar_prefill (NULL or "" = none), what a chat template already wrote of the reply (pr_chat_apply's
// "generation_prompt"), is fed to the grammar first, as common/sampling.cpp does for the chat layer's grammars.
// Returns 0, or -1 when the grammar does not parse or refuses the prefill (pr_last_error says why).
PR_API int pr_sampler_configure(pr_session * s, float temp, int top_k, float top_p, float min_p, float typical_p,
                                float repeat_penalty, int repeat_last_n, float frequency_penalty,
                                float presence_penalty, uint32_t seed, const int32_t * bias_tokens,
                                const float * bias_values, int n_bias, const char * grammar,
                                const char * grammar_triggers, const char * grammar_prefill);
// Formats a chat as llama.cpp's own tools do: the glue's one chat policy. A Jinja template (one holding "{{" or
// "{%") is rendered by llama.cpp's chat layer exactly as pr_chat_apply renders these messages without tools; with
// tmpl NULL that is the model's template (tokenizer.chat_template), falling back to llama_chat_apply_template's
// built-in list when it does not parse; any other tmpl is a built-in name ("chatml", "llama3", ...). Returns the
// byte count, -(needed) if len is too small, or PR_ERR_TEMPLATE (pr_last_error says why).
PR_API int pr_chat_format(pr_session * s, const char * tmpl, const char ** roles, const char ** contents, int n,
                          int add_assistant, char * buf, int len);
// A chat rendered as llama.cpp's server renders an OpenAI request (common/chat: the model's template, tools,
// tool_choice): request_json {"messages", "tools", "tool_choice", "parallel_tool_calls", "add_generation_prompt",
// "template"} -> JSON {"prompt", "format", "format_name", "grammar", "grammar_lazy", "grammar_triggers",
// "generation_prompt", "additional_stops", "preserved_tokens", "parser"}. Byte count, -(needed), or PR_ERR_TEMPLATE.
PR_API int pr_chat_apply(pr_session * s, const char * request_json, char * buf, int len);
// A finished reply parsed as llama.cpp's server parses it (tool calls, reasoning): state_json is what pr_chat_apply
// returned; text is text_len bytes (a NUL in it is kept); writes the OpenAI message JSON {"role", "content",
// "tool_calls", "reasoning_content"}.
PR_API int pr_chat_parse(pr_session * s, const char * state_json, const char * text, int text_len, char * buf, int len);
// Evaluates a prompt, reusing the KV cache for the longest prefix it shares with what the cache holds (the last
// prompt + the tokens generated after it): only the rest is decoded. pr_reused_tokens() tells how many were kept.
PR_API int pr_eval_prompt(pr_session * s, const int32_t * tokens, int n);
PR_API int pr_reused_tokens(pr_session * s);
PR_API int32_t pr_next_token(pr_session * s);
// The raw logits of the last evaluated position: those the last pr_next_token sampled from, or, right after
// pr_eval_prompt, those of the prompt's last token; *n_vocab is set to their count. NULL when there are none.
// Valid until the next pr_eval_prompt / pr_next_token / pr_embed. The native reference reads them for its
// teacher-forced parity check (pr_native score).
PR_API const float * pr_logits(pr_session * s, int * n_vocab);
PR_API int pr_is_eog(pr_session * s, int32_t token);
// The pooled embedding of one token sequence (llama_get_embeddings_seq), L2-normalised when `normalize`: writes
// n_embd_out floats to out and returns their count; PR_ERR_NO_POOLING when the context has no pooling (a
// generative model loaded without one), PR_ERR_CONTEXT_FULL when the text does not fit one batch. Clears the KV
// cache: the next prompt is evaluated in full.
PR_API int pr_embed(pr_session * s, const int32_t * tokens, int n, int normalize, float * out, int max);
// The length of an embedding (floats).
PR_API int pr_n_embd(pr_session * s);
// A reranker's relevance of `document` to `query` (NUL-terminated UTF-8), the pair formatted as llama.cpp's server
// formats it (the model's "rerank" template, else BOS query EOS SEP document EOS as the vocabulary adds them; EOS is
// SEP where there is none) and decoded alone: writes the first min(max, n_cls_out) classifier outputs (the first is
// llama-server's relevance_score, unnormalised) and returns n_cls_out; *n_tokens gets the pair's token count.
// PR_ERR_NOT_RERANKER for a model without pooling type rank, PR_ERR_CONTEXT_FULL when the pair does not fit one
// batch. Clears the KV cache, as pr_embed does.
PR_API int pr_rerank(pr_session * s, const char * query, const char * document, float * out, int max, int * n_tokens);
// Saved state (glue_state.cpp): the tokens the KV cache holds (what pr_eval_prompt reuses a prefix of), and that
// cache's bytes (llama_state_seq_get_data of sequence 0). pr_state_tokens: their count, or -(needed) when max is
// too small. pr_state_size: the state's byte count (PR_ERR_STATE past 2 GiB). pr_state_save: writes it to buf (len
// bytes), returns the count written or PR_ERR_STATE.
PR_API int pr_state_tokens(pr_session * s, int32_t * out, int max);
PR_API int pr_state_size(pr_session * s);
PR_API int pr_state_save(pr_session * s, uint8_t * buf, int len);
// Restores a state pr_state_save wrote, with its n tokens: the next pr_eval_prompt whose prompt starts with them
// evaluates only the rest. 0; PR_ERR_STATE when llama.cpp refuses the bytes (another model's layers, cell count or
// K/V types: the caller refuses another model of the same shapes), PR_ERR_CONTEXT_FULL for more tokens than the
// context holds, PR_ERR_EMBEDDING_MODEL. After a failure the cache is empty.
PR_API int pr_state_load(pr_session * s, const uint8_t * buf, int len, const int32_t * tokens, int n);
PR_API void pr_set_threads(pr_session * s, int n_threads);
PR_API void pr_free(pr_session * s);

// Native only (used by make-model): llama.cpp's own quantizer, type "q8_0" or "q4_k_m"; an already quantized
// input is requantized (llama-quantize --allow-requantize), which measuring fidelity on other types needs.
PR_API int pr_quantize(const char * in_path, const char * out_path, const char * type);

#define PR_ERR_DECODE (-1)
#define PR_ERR_CONTEXT_FULL (-2)
#define PR_ERR_NO_PROMPT (-3)
#define PR_ERR_TEMPLATE (-4)
#define PR_ERR_NO_POOLING (-5)
#define PR_ERR_EMBEDDING_MODEL (-6)  // generation asked of an embedding model
#define PR_ERR_STATE (-7)            // a saved state could not be written or restored
#define PR_ERR_NOT_RERANKER (-8)     // rerank asked of a model without pooling type rank
#define PR_ERR_VOCAB_ONLY (-9)       // a context asked of a session loaded with pr_load_vocab
// pr_tokenize / pr_token_to_piece / pr_detokenize: llama.cpp threw (their other negatives are -(needed)).
#define PR_ERR_EXCEPTION (-2147483647 - 1)

// load's pooling: the model's own, or one of llama.cpp's enum llama_pooling_type (glue.cpp asserts they agree).
#define PR_POOLING_MODEL (-1)
#define PR_POOLING_MEAN 1
#define PR_POOLING_CLS 2
#define PR_POOLING_LAST 3
#define PR_POOLING_RANK 4

// load's KV cache types: llama.cpp's default, or one of ggml's enum ggml_type (glue_session.cpp asserts they agree);
// the types llama.cpp's --cache-type-k/-v take. Quantized ones need flash attention, which the CPU backend has.
#define PR_CACHE_TYPE_DEFAULT (-1)
#define PR_CACHE_TYPE_F32 0
#define PR_CACHE_TYPE_F16 1
#define PR_CACHE_TYPE_Q4_0 2
#define PR_CACHE_TYPE_Q4_1 3
#define PR_CACHE_TYPE_Q5_0 6
#define PR_CACHE_TYPE_Q5_1 7
#define PR_CACHE_TYPE_Q8_0 8
#define PR_CACHE_TYPE_IQ4_NL 20
#define PR_CACHE_TYPE_BF16 30

#ifdef __cplusplus
}
#endif
