// py_runner's implementation of llama.cpp's common/log.h for the glue: synchronous, to stderr, warnings and errors
// only. llama.cpp's own log.cpp writes from a worker thread it starts on first use, which the single-thread
// WebAssembly build cannot start; the chat code (common/chat.cpp and friends) logs through this API.
#include "log.h"

#include "json.h"

#include <cstdarg>
#include <cstdio>

struct common_log {};

static int  verbosity_thold = LOG_LEVEL_WARN;  // the engine is quiet unless something is wrong
static bool jsonl           = false;

int common_log_get_verbosity_thold(void) { return verbosity_thold; }
void common_log_set_verbosity_thold(int verbosity) { verbosity_thold = verbosity; }
bool common_log_get_jsonl(void) { return jsonl; }
void common_log_set_jsonl(bool value) { jsonl = value; }

int common_log_get_verbosity(enum ggml_log_level level) {
    switch (level) {
        case GGML_LOG_LEVEL_DEBUG: return LOG_LEVEL_DEBUG;
        case GGML_LOG_LEVEL_INFO:  return LOG_LEVEL_INFO;
        case GGML_LOG_LEVEL_WARN:  return LOG_LEVEL_WARN;
        case GGML_LOG_LEVEL_ERROR: return LOG_LEVEL_ERROR;
        default:                   return LOG_LEVEL_INFO;
    }
}

void common_log_default_callback(enum ggml_log_level level, const char * text, void * /*user_data*/) {
    if (common_log_get_verbosity(level) <= verbosity_thold) {
        fputs(text, stderr);
    }
}

struct common_log * common_log_init() { return new common_log(); }

struct common_log * common_log_main() {
    static common_log log;
    return &log;
}

void common_log_pause(struct common_log *) {}
void common_log_resume(struct common_log *) {}
void common_log_free(struct common_log * log) {
    if (log != common_log_main()) {
        delete log;
    }
}

void common_log_add(struct common_log *, enum ggml_log_level level, const char * fmt, ...) {
    if (common_log_get_verbosity(level) > verbosity_thold) {
        return;
    }
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
}

void common_log_add_json(struct common_log *, const char * type, const common_json & data) {
    fprintf(stderr, "{\"type\":\"%s\",\"data\":%s}\n", type, data.dump().c_str());
}

void common_log_set_file(struct common_log *, const char *) {}
void common_log_set_colors(struct common_log *, log_colors) {}
void common_log_set_prefix(struct common_log *, bool) {}
void common_log_set_timestamps(struct common_log *, bool) {}
void common_log_flush(struct common_log *) { fflush(stderr); }
