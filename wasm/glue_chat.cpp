// py_runner glue, chats: llama.cpp's chat layer (common/chat, as llama-server renders an OpenAI request and parses
// its reply: pr_chat_apply, pr_chat_parse) and pr_chat_format, the one place of the chat policy: a Jinja template
// goes to the chat layer, anything else to llama.cpp's built-in template list (llama_chat_apply_template).

#include "glue_internal.h"

// llama.cpp's common/: its JSON wrapper, and the Jinja engine's work budget (wasm/patches/0002-jinja-bounded-render).
#include "jinja/runtime.h"
#include "json.h"

#include <cstring>
#include <string>
#include <vector>

// The chat layer's templates for the model's own template (override_source "") or another Jinja source, made once
// and kept until another is asked for.
static const common_chat_templates * chat_templates_for(pr_session * s, const std::string & override_source) {
    if (!s->chat_templates || s->chat_override != override_source) {
        s->chat_templates = common_chat_templates_init(s->model, override_source);
        s->chat_override = override_source;
    }
    return s->chat_templates.get();
}

// A request rendered as llama.cpp's server renders an OpenAI one (tools/server/server-common.cpp): body is
// {"messages", "tools", "tool_choice", "parallel_tool_calls", "add_generation_prompt", "template"}.
static common_chat_params apply_request(pr_session * s, const common_json & body) {
    const std::string override_source =
        body.contains("template") && body.at("template").is_string() ? body.at("template").get<std::string>() : "";
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
    return common_chat_templates_apply(tmpls, inputs);
}

// The chat policy's test: a template holding "{{" or "{%" is Jinja source; anything else is a built-in name
// ("chatml", "llama3", ...), which the chat layer would render as literal text.
static bool is_jinja(const char * tmpl) {
    return strstr(tmpl, "{{") != nullptr || strstr(tmpl, "{%") != nullptr;
}

// A plain chat through llama.cpp's built-in template list; false (the reason in pr_last_error) when `tmpl` is not
// one of them. `jinja_error` is why the chat layer refused the model's own template, if it did.
static bool format_builtin(const char * tmpl, const char ** roles, const char ** contents, int n, bool add_assistant,
                           const std::string & jinja_error, std::string & text) {
    std::vector<llama_chat_message> chat(n);
    for (int i = 0; i < n; ++i) {
        chat[i] = {roles[i], contents[i]};
    }
    const int32_t needed = llama_chat_apply_template(tmpl, chat.data(), chat.size(), add_assistant, nullptr, 0);
    if (needed < 0) {
        set_error(jinja_error.empty() ? "the chat template is not one of llama.cpp's built-in templates"
                                      : "the chat template does not render (" + jinja_error +
                                            ") and is not one of llama.cpp's built-in templates");
        return false;
    }
    text.resize(needed);
    llama_chat_apply_template(tmpl, chat.data(), chat.size(), add_assistant, text.data(), needed);
    return true;
}

extern "C" {

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
        std::string jinja_error;  // why the chat layer refused the model's own template, if it did
        if (is_jinja(chosen)) {
            // The chat layer, exactly as pr_chat_apply renders these messages without tools.
            common_json body = common_json::object();
            body["messages"] = common_json::array();
            for (int i = 0; i < n; ++i) {
                body["messages"].push_back(common_json{{"role", roles[i]}, {"content", contents[i]}});
            }
            body["add_generation_prompt"] = add_assistant != 0;
            if (tmpl) {
                body["template"] = tmpl;
            }
            try {
                return copy_out(apply_request(s, body).prompt, buf, len);
            } catch (const std::exception & e) {
                if (tmpl) {
                    throw;  // a template the caller chose: say why it failed
                }
                jinja_error = e.what();  // the model's own: llama.cpp's built-in list may still know it
            }
        }
        std::string text;
        if (!format_builtin(chosen, roles, contents, n, add_assistant != 0, jinja_error, text)) {
            return PR_ERR_TEMPLATE;
        }
        return copy_out(text, buf, len);
    });
}

int pr_chat_apply(pr_session * s, const char * request_json, char * buf, int len) {
    clear_errors();
    jinja::reset_budget();
    return guarded(PR_ERR_TEMPLATE, "chat template failed", [&]() -> int {
        const common_chat_params params = apply_request(s, common_json::parse(request_json));
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

}  // extern "C"
