-- Posts the real 0201 single-person fixture with a fresh nachrichtenUUID per request, so
-- every request is a new message (journal, adapter, store), never a duplicate.
-- WRK_DELAY_MS (env) makes each connection pause between requests, for a target rate.
local template
local counter = 0
local thread_id = 0
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")

local ids = 0
function setup(thread)
  ids = ids + 1
  thread:set("tid", ids)
end

function init(args)
  local f = assert(io.open(os.getenv("WRK_MESSAGE"), "rb"))
  template = f:read("*a")
  f:close()
  thread_id = tid or 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/xml"
  local run = os.getenv("WRK_RUN") or "0"
  prefix = string.format("%08x-%04x", tonumber(run), thread_id)
end

function request()
  counter = counter + 1
  local uuid = string.format("%s-4000-8000-%012x", prefix, counter)
  local body = template:gsub("<nachrichtenUUID>[^<]*</nachrichtenUUID>", "<nachrichtenUUID>" .. uuid .. "</nachrichtenUUID>", 1)
  return wrk.format(nil, "/v1/messages", nil, body)
end

function delay()
  return delay_ms
end

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("requests %d in %.1f s: %.0f req/s; errors: connect %d, read %d, write %d, status %d, timeout %d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
