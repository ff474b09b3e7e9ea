// The report of `chatshard replay` as one self-contained HTML page (--html):
// inline CSS and inline SVG charts generated here, no script, no font, no
// reference to anything outside the file, so it opens offline. Shows the
// totals, per-shard load, the end-to-end latency distribution, throughput over
// time, the hot chat's isolation, fairness scores, the hottest chats and the
// run's options. Every string that comes from the input (the file name, chat
// ids) is HTML-escaped. Pure functions of a finished replay's result.
#ifndef CHATSHARD_TOOLS_CHATSHARD_HTML_REPORT_H_
#define CHATSHARD_TOOLS_CHATSHARD_HTML_REPORT_H_

#include <string>
#include <string_view>

#include "replay.h"

namespace chatshard::cli {

// The page.
std::string HtmlReport(const ReplayResult& result, const ReplayConfig& config);

// `text` with &, <, >, " and ' replaced by character references, so it is
// safe both as element content and inside a quoted attribute.
std::string HtmlEscape(std::string_view text);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_HTML_REPORT_H_
