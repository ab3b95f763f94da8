// JSON string literals for the JSON text the glue and pr_native write (one escaper for both, header-only).
#pragma once

#include <cstdio>
#include <string>

// Appends `s` to `out` as a JSON string: quotes, backslashes and control characters escaped; other bytes as they
// are (UTF-8 passes through).
inline void append_json_string(std::string & out, const std::string & s) {
    out += '"';
    for (const unsigned char ch : s) {
        switch (ch) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (ch < 0x20) {
                    char escaped[8];
                    snprintf(escaped, sizeof(escaped), "\\u%04x", ch);
                    out += escaped;
                } else {
                    out += (char) ch;
                }
        }
    }
    out += '"';
}
