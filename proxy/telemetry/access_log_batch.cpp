// AccessLogBatch: collects a worker's access log lines during one event-loop pass and writes them in few write(2)s.
#include "proxy/telemetry/access_log_batch.h"

#include <event2/event.h>
#include <limits.h>

#include "proxy/telemetry/log.h"

namespace scepproxy::proxy {
namespace {

thread_local AccessLogBatch* t_batch = nullptr;

// Whole lines, at most PIPE_BUF bytes of them; a longer line goes alone.
size_t next_write_length(std::string_view text) {
    if (text.size() <= PIPE_BUF) return text.size();
    size_t end = text.rfind('\n', PIPE_BUF - 1);
    if (end == std::string_view::npos) end = text.find('\n');
    return end == std::string_view::npos ? text.size() : end + 1;
}

}  // namespace

AccessLogBatch::AccessLogBatch(event_base* base) {
    flush_event_ = event_new(base, -1, 0, &AccessLogBatch::on_flush, this);
}

AccessLogBatch::~AccessLogBatch() {
    flush();
    if (t_batch == this) t_batch = nullptr;
    if (flush_event_) event_free(flush_event_);
}

void AccessLogBatch::install() { t_batch = this; }

AccessLogBatch* AccessLogBatch::current() { return t_batch; }

void AccessLogBatch::add(std::string_view line) {
    pending_.append(line);
    if (pending_.size() >= kMaxPendingBytes) {
        flush();
        return;
    }
    if (!flush_scheduled_ && flush_event_) {
        flush_scheduled_ = true;
        event_active(flush_event_, 0, 0);
    }
}

void AccessLogBatch::on_flush(int, short, void* arg) {
    auto* batch = static_cast<AccessLogBatch*>(arg);
    batch->flush_scheduled_ = false;
    batch->flush();
}

void AccessLogBatch::flush() {
    std::string_view rest = pending_;
    while (!rest.empty()) {
        const size_t length = next_write_length(rest);
        write_log_text(rest.substr(0, length));
        rest.remove_prefix(length);
    }
    pending_.clear();
    if (pending_.capacity() > kMaxPendingBytes) std::string().swap(pending_);
}

void write_access_line(std::string_view line) {
    if (AccessLogBatch* batch = AccessLogBatch::current())
        batch->add(line);
    else
        write_log_text(line);
}

}  // namespace scepproxy::proxy
