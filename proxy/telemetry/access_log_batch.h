// AccessLogBatch: one worker's access log lines, written together once per event-loop pass instead of one write each.
#pragma once

#include <string>
#include <string_view>

struct event;
struct event_base;

namespace scepproxy::proxy {

// Lines added while the loop runs its ready callbacks are written when they are done (an event
// activated by the first line runs after them), at most PIPE_BUF bytes of whole lines per
// write(2), so lines stay whole on a pipe shared with other workers. A worker installs one for
// its thread; where none is installed (the control loop, tests), lines are written at once.
class AccessLogBatch {
public:
    static constexpr size_t kMaxPendingBytes = 65536;  // written at once past this, whatever the loop does

    explicit AccessLogBatch(event_base* base);
    ~AccessLogBatch();  // writes what is pending
    AccessLogBatch(const AccessLogBatch&) = delete;
    AccessLogBatch& operator=(const AccessLogBatch&) = delete;

    // Makes this the batch of the calling thread (the one running `base`), until destroyed.
    void install();
    // The calling thread's batch, or null.
    static AccessLogBatch* current();

    void add(std::string_view line);  // one whole line, newline included
    void flush();

private:
    static void on_flush(int, short, void* arg);

    event* flush_event_ = nullptr;
    bool flush_scheduled_ = false;
    std::string pending_;
};

// Writes a finished line through the calling thread's batch, or at once when it has none.
void write_access_line(std::string_view line);

}  // namespace scepproxy::proxy
