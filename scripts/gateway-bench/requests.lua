-- wrk script: sends the pre-signed requests of $JG_BENCH_REQUESTS, each once. Thread k of
-- T sends lines k, k+T, k+2T, ...; past the last line it starts again, and the gateway
-- answers those replays 401 (counted as non-2xx in the results): use more lines.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  lines = {}
  local stride = #threads > 0 and #threads or tonumber(os.getenv("JG_BENCH_THREADS"))
  local i = 0
  for line in io.lines(os.getenv("JG_BENCH_REQUESTS")) do
    if i % stride == id then
      local target, ts, sig = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)")
      lines[#lines + 1] = wrk.format("GET", target, {
        ["Host"] = "api.justgold.me",
        ["X-Client-Id"] = os.getenv("JG_BENCH_CLIENT"),
        ["X-Timestamp"] = ts,
        ["X-Signature"] = sig,
      })
    end
    i = i + 1
  end
  next_line = 1
end

function request()
  local r = lines[next_line]
  next_line = next_line + 1
  if next_line > #lines then
    next_line = 1
  end
  return r
end
