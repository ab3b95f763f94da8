// pr_native: the native reference build of the glue, for parity tests and benchmarks.
//   pr_native generate --model PATH (--prompt TEXT | --user TEXT [--system TEXT]) [--n-predict N] [--threads N]
//                      [--temp T] [--top-k K] [--top-p P] [--seed S] [--ctx-size N] [--batch-size N]
//                      [--cache-type-k TYPE] [--cache-type-v TYPE]
//       prints one JSON object: {"tokens", "pieces_hex", "prompt_hex", "finish_reason", "metadata", "timings"};
//       --user makes the prompt a chat (an optional system message, then the user's) in the model's own template
//   pr_native score --model PATH --prompt TEXT --tokens ID,ID,... [--threads N] [--ctx-size N] [--batch-size N]
//                   [--logits-out FILE] [--cache-type-k TYPE] [--cache-type-v TYPE]
//       teacher-forced greedy check: evaluates the prompt, then feeds the given tokens one at a time (the same
//       single-token decodes as generation). Prints {"steps": [{"token", "argmax", "margin", "deficit"}, ...],
//       "n_vocab"}: native's best token at each step, its lead over the second best (logits), and how far the given
//       token's logit is below the best (0 when it is the best). --logits-out writes every step's raw logits
//       (n_vocab float32 each, in order) for a full comparison (the browser's LlamaRunner.logits()).
//   pr_native tokenize --model PATH --text TEXT [--add-special 0|1] [--parse-special 0|1]
//   pr_native embed --model PATH --text TEXT [--text TEXT ...] [--pooling -1|1|2|3] [--normalize 0|1]
//                   [--ctx-size N] [--batch-size N] [--threads N]
//       prints {"embeddings": [[...], ...], "n_tokens": [...], "metadata"}: one pooled vector per text
//   pr_native rerank --model PATH --query TEXT --document TEXT [--document TEXT ...] [--ctx-size N] [--batch-size N]
//       prints {"scores": [...], "n_tokens": [...]}: a reranker's relevance score of each document (pr_rerank)
//   pr_native chat --model PATH --request FILE [--reply FILE]
//       prints pr_chat_apply's JSON for an OpenAI-shaped request (messages, tools, tool_choice) and, with --reply,
//       {"apply": ..., "message": ...}: the reply's text parsed as llama.cpp's server parses it (pr_chat_parse)
//   pr_native grammar --model PATH --file FILE
//       parses each GBNF grammar of FILE (separated by NUL bytes) with llama.cpp's own grammar parser, as a
//       sampler for the model's vocabulary; prints {"results": [{"ok": bool, "error": TEXT}, ...]}
//   pr_native quantize IN OUT TYPE        (TYPE: q8_0 | q4_k_m)
// It runs exactly the loop of web/worker.js: tokenize (add_special, parse_special), eval prompt, next token.

#include "ggml.h"
#include "glue.h"
#include "json_text.h"

#include <chrono>
#include <clocale>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// A KV cache type by ggml's name for it ("f16", "q8_0", ...): one of glue.h's PR_CACHE_TYPE_*, or -2 if none is.
static int cache_type(const char * name) {
    for (const int type : {PR_CACHE_TYPE_F32, PR_CACHE_TYPE_F16, PR_CACHE_TYPE_BF16, PR_CACHE_TYPE_Q8_0,
                           PR_CACHE_TYPE_Q4_0, PR_CACHE_TYPE_Q4_1, PR_CACHE_TYPE_Q5_0, PR_CACHE_TYPE_Q5_1,
                           PR_CACHE_TYPE_IQ4_NL}) {
        if (strcmp(ggml_type_name((ggml_type) type), name) == 0) {
            return type;
        }
    }
    return -2;
}

static int usage() {
    fprintf(stderr,
            "usage: pr_native generate --model PATH (--prompt TEXT | --user TEXT [--system TEXT]) [--n-predict N]\n"
            "                          [--threads N] [--temp T] [--top-k K] [--top-p P] [--seed S] [--ctx-size N]\n"
            "                          [--batch-size N] [--cache-type-k TYPE] [--cache-type-v TYPE]\n"
            "       pr_native score --model PATH --prompt TEXT --tokens ID,ID,... [--threads N] [--ctx-size N]\n"
            "                       [--batch-size N] [--logits-out FILE] [--cache-type-k TYPE] [--cache-type-v TYPE]\n"
            "       pr_native tokenize --model PATH --text TEXT [--add-special 0|1] [--parse-special 0|1]\n"
            "                          [--vocab-only 0|1]\n"
            "       pr_native embed --model PATH --text TEXT [--text TEXT ...] [--pooling -1|1|2|3]\n"
            "                       [--normalize 0|1] [--ctx-size N] [--batch-size N] [--threads N]\n"
            "       pr_native rerank --model PATH --query TEXT --document TEXT [--document TEXT ...]\n"
            "                        [--ctx-size N] [--batch-size N] [--threads N]\n"
            "       pr_native chat --model PATH --request FILE [--reply FILE]\n"
            "       pr_native grammar --model PATH --file FILE\n"
            "       pr_native quantize IN OUT q8_0|q4_k_m\n");
    return 2;
}

// The model with a tiny context, for the subcommands that only tokenize or format (no generation): NULL, with the
// reason on stderr, when it does not load.
static pr_session * load_small(const std::string & model_path) {
    pr_init();
    pr_session * s = pr_load(model_path.c_str(), 64, 64, 1, PR_POOLING_MODEL, PR_CACHE_TYPE_DEFAULT, PR_CACHE_TYPE_DEFAULT);
    if (!s) {
        fprintf(stderr, "error: %s\n", pr_last_error());
    }
    return s;
}

// All the tokens of `text` (pr_tokenize answers -(needed) when the buffer is too small).
static std::vector<int32_t> tokenize_all(pr_session * s, const std::string & text, int add_special,
                                         int parse_special) {
    std::vector<int32_t> tokens(text.size() + 8);
    int n = pr_tokenize(s, text.data(), (int) text.size(), add_special, parse_special, tokens.data(), (int) tokens.size());
    if (n < 0) {
        tokens.resize(-n);
        n = pr_tokenize(s, text.data(), (int) text.size(), add_special, parse_special, tokens.data(), (int) tokens.size());
    }
    tokens.resize(n);
    return tokens;
}

static std::string hex_of(const char * bytes, size_t n) {
    std::string hex;
    for (size_t i = 0; i < n; ++i) {
        char b[3];
        snprintf(b, sizeof(b), "%02x", (unsigned char) bytes[i]);
        hex += b;
    }
    return hex;
}

static std::string read_file(const std::string & path) {
    std::string out;
    if (FILE * f = fopen(path.c_str(), "rb")) {
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
            out.append(chunk, n);
        }
        fclose(f);
    }
    return out;
}

// Calls a glue function that writes into a buffer and returns -(needed) when it is too small.
template <typename Call> static bool grow_call(std::string & out, Call && call) {
    std::vector<char> buf(1 << 16);
    int n = call(buf.data(), (int) buf.size());
    if (n < 0 && n != PR_ERR_TEMPLATE) {
        buf.resize(-n);
        n = call(buf.data(), (int) buf.size());
    }
    if (n < 0) {
        return false;
    }
    out.assign(buf.data(), n);
    return true;
}

// A chat of an optional system message and one user message in the model's own template, as the browser formats
// it: pr_chat_format, where the glue's one chat policy lives (a Jinja template through llama.cpp's chat layer, as
// llama-server renders it; otherwise, or when the model's template does not parse, llama.cpp's built-in list);
// false when neither can (pr_last_error says why).
static bool format_chat(pr_session * s, const std::string & system, const std::string & user, std::string & out) {
    std::vector<const char *> roles, contents;
    if (!system.empty()) {
        roles.push_back("system");
        contents.push_back(system.c_str());
    }
    roles.push_back("user");
    contents.push_back(user.c_str());
    return grow_call(out, [&](char * buf, int len) {
        return pr_chat_format(s, nullptr, roles.data(), contents.data(), (int) roles.size(), 1, buf, len);
    });
}

static int generate(int argc, char ** argv) {
    std::string model_path, prompt, system, user;
    int n_predict = 32, n_threads = 1, top_k = 40, n_ctx = 2048, n_batch = 512;
    int type_k = PR_CACHE_TYPE_DEFAULT, type_v = PR_CACHE_TYPE_DEFAULT;
    float temp = 0.0f, top_p = 0.95f;
    unsigned long seed = 0;
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i + 1 >= argc) {
            return usage();
        }
        const char * value = argv[++i];
        if (arg == "--model") model_path = value;
        else if (arg == "--prompt") prompt = value;
        else if (arg == "--system") system = value;
        else if (arg == "--user") user = value;
        else if (arg == "--n-predict") n_predict = atoi(value);
        else if (arg == "--threads") n_threads = atoi(value);
        else if (arg == "--temp") temp = (float) atof(value);
        else if (arg == "--top-k") top_k = atoi(value);
        else if (arg == "--top-p") top_p = (float) atof(value);
        else if (arg == "--seed") seed = strtoul(value, nullptr, 10);
        else if (arg == "--ctx-size") n_ctx = atoi(value);
        else if (arg == "--batch-size") n_batch = atoi(value);
        else if (arg == "--cache-type-k") type_k = cache_type(value);
        else if (arg == "--cache-type-v") type_v = cache_type(value);
        else return usage();
    }
    if (model_path.empty()) {
        return usage();
    }

    pr_init();

    // 1. load
    const double t_load = now_ms();
    pr_session * s = pr_load(model_path.c_str(), n_ctx, n_batch, n_threads, PR_POOLING_MODEL, type_k, type_v);
    if (!s) {
        fprintf(stderr, "error: %s\n", pr_last_error());
        return 1;
    }
    const double load_ms = now_ms() - t_load;

    // 2. the chat template, then tokenize
    if (!user.empty() && !format_chat(s, system, user, prompt)) {
        fprintf(stderr, "error: %s\n", pr_last_error());
        pr_free(s);
        return 1;
    }
    std::vector<int32_t> prompt_tokens = tokenize_all(s, prompt, 1, 1);
    const int n_prompt = (int) prompt_tokens.size();

    // 3. evaluate the prompt, then generate token by token
    // (min-p, typical-p and penalties off: the sampling flags this tool takes are temp, top-k and top-p)
    pr_sampler_configure(s, temp, top_k, top_p, 0.0f, 1.0f, 1.0f, 0, 0.0f, 0.0f, (uint32_t) seed, nullptr, nullptr, 0,
                         nullptr, nullptr, nullptr);
    const double t_prompt = now_ms();
    if (pr_eval_prompt(s, prompt_tokens.data(), n_prompt) != 0) {
        fprintf(stderr, "error: %s\n", pr_last_error());
        pr_free(s);
        return 1;
    }
    const double t_gen = now_ms();
    const double prompt_ms = t_gen - t_prompt;

    std::string tokens_json, pieces_json;
    const char * finish_reason = "length";
    int n_gen = 0;
    for (; n_gen < n_predict; ++n_gen) {
        const int32_t token = pr_next_token(s);
        if (token == PR_ERR_CONTEXT_FULL) {
            finish_reason = "context_full";
            break;
        }
        if (token < 0) {
            fprintf(stderr, "error: %s\n", pr_last_error());
            pr_free(s);
            return 1;
        }
        if (pr_is_eog(s, token)) {
            finish_reason = "eos";
            break;
        }
        char piece[256];
        const int n = pr_token_to_piece(s, token, piece, sizeof(piece));
        tokens_json += (n_gen ? "," : "") + std::to_string(token);
        pieces_json += std::string(n_gen ? "," : "") + "\"" + hex_of(piece, n > 0 ? n : 0) + "\"";
    }
    const double gen_ms = now_ms() - t_gen;

    printf("{\"tokens\":[%s],\"pieces_hex\":[%s],\"prompt_hex\":\"%s\",\"finish_reason\":\"%s\",\"metadata\":%s,"
           "\"timings\":{\"load_ms\":%.3f,\"prompt_tokens\":%d,\"prompt_ms\":%.3f,\"gen_tokens\":%d,\"gen_ms\":%.3f}}\n",
           tokens_json.c_str(), pieces_json.c_str(), hex_of(prompt.data(), prompt.size()).c_str(), finish_reason, pr_metadata_json(s), load_ms, n_prompt,
           prompt_ms, n_gen, gen_ms);
    pr_free(s);
    return 0;
}

// pr_native score: where a greedy token sequence from elsewhere (the browser) departs from native llama.cpp, and
// by how much. The prompt is tokenized like generate does (add_special, parse_special).
static int score(int argc, char ** argv) {
    std::string model_path, prompt, token_list, logits_out;
    int n_threads = 1, n_ctx = 2048, n_batch = 512;
    int type_k = PR_CACHE_TYPE_DEFAULT, type_v = PR_CACHE_TYPE_DEFAULT;
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--model") model_path = argv[i + 1];
        else if (arg == "--prompt") prompt = argv[i + 1];
        else if (arg == "--tokens") token_list = argv[i + 1];
        else if (arg == "--threads") n_threads = atoi(argv[i + 1]);
        else if (arg == "--ctx-size") n_ctx = atoi(argv[i + 1]);
        else if (arg == "--batch-size") n_batch = atoi(argv[i + 1]);
        else if (arg == "--logits-out") logits_out = argv[i + 1];
        else if (arg == "--cache-type-k") type_k = cache_type(argv[i + 1]);
        else if (arg == "--cache-type-v") type_v = cache_type(argv[i + 1]);
        else return usage();
    }
    if (model_path.empty()) {
        return usage();
    }
    FILE * dump = nullptr;
    if (!logits_out.empty() && !(dump = fopen(logits_out.c_str(), "wb"))) {
        fprintf(stderr, "error: cannot write %s\n", logits_out.c_str());
        return 1;
    }
    std::vector<int32_t> forced;
    for (const char * p = token_list.c_str(); *p;) {
        char * end = nullptr;
        forced.push_back((int32_t) strtol(p, &end, 10));
        p = *end == ',' ? end + 1 : end;
        if (end == p && *p) {
            return usage();
        }
    }
    pr_init();
    pr_session * s = pr_load(model_path.c_str(), n_ctx, n_batch, n_threads, PR_POOLING_MODEL, type_k, type_v);
    if (!s) {
        fprintf(stderr, "error: %s\n", pr_last_error());
        return 1;
    }
    std::vector<int32_t> sequence = tokenize_all(s, prompt, 1, 1);
    std::string steps;
    int n_vocab = 0;
    for (size_t step = 0; step < forced.size(); ++step) {
        // The cache holds the sequence but its last token: only that token is decoded.
        const float * logits = pr_eval_prompt(s, sequence.data(), (int) sequence.size()) == 0
                                   ? pr_logits(s, &n_vocab) : nullptr;
        if (!logits) {
            fprintf(stderr, "error at step %zu: %s\n", step, pr_last_error());
            pr_free(s);
            if (dump) {
                fclose(dump);
            }
            return 1;
        }
        if (dump) {
            fwrite(logits, sizeof(float), n_vocab, dump);
        }
        int best = 0;
        for (int t = 1; t < n_vocab; ++t) {
            best = logits[t] > logits[best] ? t : best;
        }
        float second = -INFINITY;
        for (int t = 0; t < n_vocab; ++t) {
            second = t != best && logits[t] > second ? logits[t] : second;
        }
        const int32_t token = forced[step];
        const float deficit = token >= 0 && token < n_vocab ? logits[best] - logits[token] : INFINITY;
        char buf[160];
        snprintf(buf, sizeof(buf), "%s{\"token\":%d,\"argmax\":%d,\"margin\":%.6g,\"deficit\":%.6g}", step ? "," : "",
                 token, best, logits[best] - second, deficit);
        steps += buf;
        sequence.push_back(token);
    }
    printf("{\"steps\":[%s],\"prompt_tokens\":%d,\"n_vocab\":%d}\n", steps.c_str(),
           (int) (sequence.size() - forced.size()), n_vocab);
    if (dump) {
        fclose(dump);
    }
    pr_free(s);
    return 0;
}

// pr_native tokenize --model PATH --text TEXT [--add-special 0|1] [--parse-special 0|1] [--vocab-only 0|1]
//     prints {"tokens": [...], "detokenized_hex": "..."}: the reference for the browser's tokenize/detokenize.
static int tokenize(int argc, char ** argv) {
    std::string model_path, text;
    int add_special = 1, parse_special = 0, vocab_only = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--model") model_path = argv[i + 1];
        else if (arg == "--text") text = argv[i + 1];
        else if (arg == "--add-special") add_special = atoi(argv[i + 1]);
        else if (arg == "--parse-special") parse_special = atoi(argv[i + 1]);
        else if (arg == "--vocab-only") vocab_only = atoi(argv[i + 1]);
        else return usage();
    }
    pr_session * s = nullptr;
    if (vocab_only) {
        pr_init();
        s = pr_load_vocab(model_path.c_str());  // llama-cpp-python's vocab_only=True
        if (!s) {
            fprintf(stderr, "error: %s\n", pr_last_error());
        }
    } else {
        s = load_small(model_path);
    }
    if (!s) {
        return 1;
    }
    std::vector<int32_t> tokens = tokenize_all(s, text, add_special, parse_special);
    const int n = (int) tokens.size();
    std::vector<char> buf(text.size() * 4 + 64);
    int len = pr_detokenize(s, tokens.data(), n, buf.data(), (int) buf.size(), 0, parse_special);
    if (len < 0) {
        buf.resize(-len);
        len = pr_detokenize(s, tokens.data(), n, buf.data(), (int) buf.size(), 0, parse_special);
    }
    std::string ids;
    for (int i = 0; i < n; ++i) {
        ids += (i ? "," : "") + std::to_string(tokens[i]);
    }
    printf("{\"tokens\":[%s],\"detokenized_hex\":\"%s\"}\n", ids.c_str(), hex_of(buf.data(), len).c_str());
    pr_free(s);
    return 0;
}

// pr_native embed: the reference for the browser's embed(); texts are tokenized like the worker does
// (add_special, no special-token parsing).
static int embed(int argc, char ** argv) {
    std::string model_path;
    std::vector<std::string> texts;
    int pooling = PR_POOLING_MODEL, normalize = 1, n_ctx = 2048, n_batch = 256, n_threads = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--model") model_path = argv[i + 1];
        else if (arg == "--text") texts.push_back(argv[i + 1]);
        else if (arg == "--pooling") pooling = atoi(argv[i + 1]);
        else if (arg == "--normalize") normalize = atoi(argv[i + 1]);
        else if (arg == "--ctx-size") n_ctx = atoi(argv[i + 1]);
        else if (arg == "--batch-size") n_batch = atoi(argv[i + 1]);
        else if (arg == "--threads") n_threads = atoi(argv[i + 1]);
        else return usage();
    }
    if (model_path.empty() || texts.empty()) {
        return usage();
    }
    pr_init();
    pr_session * s = pr_load(model_path.c_str(), n_ctx, n_batch, n_threads, pooling, PR_CACHE_TYPE_DEFAULT, PR_CACHE_TYPE_DEFAULT);
    if (!s) {
        fprintf(stderr, "error: %s\n", pr_last_error());
        return 1;
    }
    std::string vectors, counts;
    std::vector<float> out(pr_n_embd(s));
    for (size_t t = 0; t < texts.size(); ++t) {
        std::vector<int32_t> tokens = tokenize_all(s, texts[t], 1, 0);
        const int n = pr_embed(s, tokens.data(), (int) tokens.size(), normalize, out.data(), (int) out.size());
        if (n < 0) {
            fprintf(stderr, "error: %s\n", pr_last_error());
            pr_free(s);
            return 1;
        }
        vectors += t ? ",[" : "[";
        for (int i = 0; i < n; ++i) {
            char b[32];
            snprintf(b, sizeof(b), "%s%.9g", i ? "," : "", out[i]);
            vectors += b;
        }
        vectors += "]";
        counts += (t ? "," : "") + std::to_string(tokens.size());
    }
    printf("{\"embeddings\":[%s],\"n_tokens\":[%s],\"metadata\":%s}\n", vectors.c_str(), counts.c_str(),
           pr_metadata_json(s));
    pr_free(s);
    return 0;
}

// pr_native rerank: the reference for the browser's rerank(); each (query, document) pair is formatted and scored
// by the glue (pr_rerank), as the worker does.
static int rerank(int argc, char ** argv) {
    std::string model_path, query;
    std::vector<std::string> documents;
    int n_ctx = 2048, n_batch = 256, n_threads = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--model") model_path = argv[i + 1];
        else if (arg == "--query") query = argv[i + 1];
        else if (arg == "--document") documents.push_back(argv[i + 1]);
        else if (arg == "--ctx-size") n_ctx = atoi(argv[i + 1]);
        else if (arg == "--batch-size") n_batch = atoi(argv[i + 1]);
        else if (arg == "--threads") n_threads = atoi(argv[i + 1]);
        else return usage();
    }
    if (model_path.empty() || documents.empty()) {
        return usage();
    }
    pr_init();
    pr_session * s = pr_load(model_path.c_str(), n_ctx, n_batch, n_threads, PR_POOLING_MODEL, PR_CACHE_TYPE_DEFAULT,
                             PR_CACHE_TYPE_DEFAULT);
    if (!s) {
        fprintf(stderr, "error: %s\n", pr_last_error());
        return 1;
    }
    std::string scores, counts;
    for (size_t d = 0; d < documents.size(); ++d) {
        float score = 0.0f;
        int n_tokens = 0;
        if (pr_rerank(s, query.c_str(), documents[d].c_str(), &score, 1, &n_tokens) < 0) {
            fprintf(stderr, "error: %s\n", pr_last_error());
            pr_free(s);
            return 1;
        }
        char b[32];
        snprintf(b, sizeof(b), "%s%.9g", d ? "," : "", score);
        scores += b;
        counts += (d ? "," : "") + std::to_string(n_tokens);
    }
    printf("{\"scores\":[%s],\"n_tokens\":[%s]}\n", scores.c_str(), counts.c_str());
    pr_free(s);
    return 0;
}

// pr_native chat: the reference for the browser's chat_apply / chat_parse requests.
static int chat(int argc, char ** argv) {
    std::string model_path, request_path, reply_path;
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--model") model_path = argv[i + 1];
        else if (arg == "--request") request_path = argv[i + 1];
        else if (arg == "--reply") reply_path = argv[i + 1];
        else return usage();
    }
    pr_session * s = load_small(model_path);
    if (!s) {
        return 1;
    }
    const std::string request = read_file(request_path);
    std::string applied;
    if (!grow_call(applied, [&](char * buf, int len) { return pr_chat_apply(s, request.c_str(), buf, len); })) {
        fprintf(stderr, "error: %s\n", pr_last_error());
        pr_free(s);
        return 1;
    }
    if (reply_path.empty()) {
        printf("%s\n", applied.c_str());
    } else {
        const std::string reply = read_file(reply_path);
        std::string message;
        if (!grow_call(message, [&](char * buf, int len) {
                return pr_chat_parse(s, applied.c_str(), reply.data(), (int) reply.size(), buf, len);
            })) {
            fprintf(stderr, "error: %s\n", pr_last_error());
            pr_free(s);
            return 1;
        }
        printf("{\"apply\":%s,\"message\":%s}\n", applied.c_str(), message.c_str());
    }
    pr_free(s);
    return 0;
}

// pr_native grammar: is each grammar one llama.cpp accepts? (the unit tests check every grammar py_runner emits)
static int grammar(int argc, char ** argv) {
    std::string model_path, file;
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--model") model_path = argv[i + 1];
        else if (arg == "--file") file = argv[i + 1];
        else return usage();
    }
    if (model_path.empty() || file.empty()) {
        return usage();
    }
    FILE * f = fopen(file.c_str(), "rb");
    if (!f) {
        fprintf(stderr, "error: cannot read %s\n", file.c_str());
        return 1;
    }
    std::string all;
    char chunk[65536];
    for (size_t n; (n = fread(chunk, 1, sizeof(chunk), f)) > 0;) {
        all.append(chunk, n);
    }
    fclose(f);
    pr_session * s = load_small(model_path);
    if (!s) {
        return 1;
    }
    std::string results;
    for (size_t start = 0; start <= all.size();) {
        size_t end = all.find('\0', start);
        if (end == std::string::npos) {
            end = all.size();
        }
        const std::string text = all.substr(start, end - start);
        const int rc = pr_sampler_configure(s, 0.0f, 0, 1.0f, 0.0f, 1.0f, 1.0f, 0, 0.0f, 0.0f, 0, nullptr, nullptr, 0,
                                            text.c_str(), nullptr, nullptr);
        results += std::string(results.empty() ? "" : ",") + "{\"ok\":" + (rc == 0 ? "true" : "false") + ",\"error\":";
        append_json_string(results, rc == 0 ? "" : pr_last_error());
        results += "}";
        start = end + 1;
    }
    printf("{\"results\":[%s]}\n", results.c_str());
    pr_free(s);
    return 0;
}

int main(int argc, char ** argv) {
    std::setlocale(LC_NUMERIC, "C");
    if (argc >= 2 && strcmp(argv[1], "generate") == 0) {
        return generate(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "score") == 0) {
        return score(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "tokenize") == 0) {
        return tokenize(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "embed") == 0) {
        return embed(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "rerank") == 0) {
        return rerank(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "chat") == 0) {
        return chat(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "grammar") == 0) {
        return grammar(argc, argv);
    }
    if (argc == 5 && strcmp(argv[1], "quantize") == 0) {
        pr_init();
        if (pr_quantize(argv[2], argv[3], argv[4]) != 0) {
            fprintf(stderr, "error: %s\n", pr_last_error());
            return 1;
        }
        return 0;
    }
    return usage();
}
