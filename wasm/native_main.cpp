// pr_native: the native reference build of the glue, for parity tests and benchmarks.
//   pr_native generate --model PATH --prompt TEXT [--n-predict N] [--threads N] [--temp T] [--top-k K]
//                      [--top-p P] [--seed S] [--ctx-size N] [--batch-size N]
//       prints one JSON object: {"tokens", "pieces_hex", "finish_reason", "metadata", "timings"}
//   pr_native tokenize --model PATH --text TEXT [--add-special 0|1] [--parse-special 0|1]
//   pr_native embed --model PATH --text TEXT [--text TEXT ...] [--pooling -1|1|2|3] [--normalize 0|1]
//                   [--ctx-size N] [--batch-size N] [--threads N]
//       prints {"embeddings": [[...], ...], "n_tokens": [...], "metadata"}: one pooled vector per text
//   pr_native quantize IN OUT TYPE        (TYPE: q8_0 | q4_k_m)
// It runs exactly the loop of web/worker.js: tokenize (add_special, parse_special), eval prompt, next token.

#include "glue.h"

#include <chrono>
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

static int usage() {
    fprintf(stderr,
            "usage: pr_native generate --model PATH --prompt TEXT [--n-predict N] [--threads N] [--temp T]\n"
            "                          [--top-k K] [--top-p P] [--seed S] [--ctx-size N] [--batch-size N]\n"
            "       pr_native tokenize --model PATH --text TEXT [--add-special 0|1] [--parse-special 0|1]\n"
            "       pr_native embed --model PATH --text TEXT [--text TEXT ...] [--pooling -1|1|2|3]\n"
            "                       [--normalize 0|1] [--ctx-size N] [--batch-size N] [--threads N]\n"
            "       pr_native quantize IN OUT q8_0|q4_k_m\n");
    return 2;
}

// All the tokens of `text` (pr_tokenize answers -(needed) when the buffer is too small).
static std::vector<int32_t> tokenize_all(pr_session * s, const std::string & text, int add_special,
                                         int parse_special) {
    std::vector<int32_t> tokens(text.size() + 8);
    int n = pr_tokenize(s, text.c_str(), add_special, parse_special, tokens.data(), (int) tokens.size());
    if (n < 0) {
        tokens.resize(-n);
        n = pr_tokenize(s, text.c_str(), add_special, parse_special, tokens.data(), (int) tokens.size());
    }
    tokens.resize(n);
    return tokens;
}

static int generate(int argc, char ** argv) {
    std::string model_path, prompt;
    int n_predict = 32, n_threads = 1, top_k = 40, n_ctx = 2048, n_batch = 512;
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
        else if (arg == "--n-predict") n_predict = atoi(value);
        else if (arg == "--threads") n_threads = atoi(value);
        else if (arg == "--temp") temp = (float) atof(value);
        else if (arg == "--top-k") top_k = atoi(value);
        else if (arg == "--top-p") top_p = (float) atof(value);
        else if (arg == "--seed") seed = strtoul(value, nullptr, 10);
        else if (arg == "--ctx-size") n_ctx = atoi(value);
        else if (arg == "--batch-size") n_batch = atoi(value);
        else return usage();
    }
    if (model_path.empty()) {
        return usage();
    }

    pr_init();

    // 1. load
    const double t_load = now_ms();
    pr_session * s = pr_load(model_path.c_str(), n_ctx, n_batch, n_threads, PR_POOLING_MODEL);
    if (!s) {
        fprintf(stderr, "error: %s\n", pr_last_error());
        return 1;
    }
    const double load_ms = now_ms() - t_load;

    // 2. tokenize
    std::vector<int32_t> prompt_tokens = tokenize_all(s, prompt, 1, 1);
    const int n_prompt = (int) prompt_tokens.size();

    // 3. evaluate the prompt, then generate token by token
    pr_sampler_init(s, temp, top_k, top_p, (uint32_t) seed);
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
        std::string hex;
        for (int i = 0; i < n; ++i) {
            char b[3];
            snprintf(b, sizeof(b), "%02x", (unsigned char) piece[i]);
            hex += b;
        }
        tokens_json += (n_gen ? "," : "") + std::to_string(token);
        pieces_json += std::string(n_gen ? "," : "") + "\"" + hex + "\"";
    }
    const double gen_ms = now_ms() - t_gen;

    printf("{\"tokens\":[%s],\"pieces_hex\":[%s],\"finish_reason\":\"%s\",\"metadata\":%s,"
           "\"timings\":{\"load_ms\":%.3f,\"prompt_tokens\":%d,\"prompt_ms\":%.3f,\"gen_tokens\":%d,\"gen_ms\":%.3f}}\n",
           tokens_json.c_str(), pieces_json.c_str(), finish_reason, pr_metadata_json(s), load_ms, n_prompt,
           prompt_ms, n_gen, gen_ms);
    pr_free(s);
    return 0;
}

// pr_native tokenize --model PATH --text TEXT [--add-special 0|1] [--parse-special 0|1]
//     prints {"tokens": [...], "detokenized_hex": "..."}: the reference for the browser's tokenize/detokenize.
static int tokenize(int argc, char ** argv) {
    std::string model_path, text;
    int add_special = 1, parse_special = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--model") model_path = argv[i + 1];
        else if (arg == "--text") text = argv[i + 1];
        else if (arg == "--add-special") add_special = atoi(argv[i + 1]);
        else if (arg == "--parse-special") parse_special = atoi(argv[i + 1]);
        else return usage();
    }
    pr_init();
    pr_session * s = pr_load(model_path.c_str(), 64, 64, 1, PR_POOLING_MODEL);
    if (!s) {
        fprintf(stderr, "error: %s\n", pr_last_error());
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
    std::string ids, hex;
    for (int i = 0; i < n; ++i) {
        ids += (i ? "," : "") + std::to_string(tokens[i]);
    }
    for (int i = 0; i < len; ++i) {
        char b[3];
        snprintf(b, sizeof(b), "%02x", (unsigned char) buf[i]);
        hex += b;
    }
    printf("{\"tokens\":[%s],\"detokenized_hex\":\"%s\"}\n", ids.c_str(), hex.c_str());
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
    pr_session * s = pr_load(model_path.c_str(), n_ctx, n_batch, n_threads, pooling);
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

int main(int argc, char ** argv) {
    std::setlocale(LC_NUMERIC, "C");
    if (argc >= 2 && strcmp(argv[1], "generate") == 0) {
        return generate(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "tokenize") == 0) {
        return tokenize(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "embed") == 0) {
        return embed(argc, argv);
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
