-- wrk script: GET one item per request, rotating through a file of ids.
-- Arguments after `--`: ids file, path prefix, then optional "Name: value" headers.
-- Every request is formatted once in init(), so per request wrk only picks a string:
-- the generator stays far from being the bottleneck.

local requests = {}
local count = 0
local position = 0

function setup(thread)
  -- Threads start at different places in the list, so they do not request in lockstep.
  thread:set("thread_index", setup_index or 0)
  setup_index = (setup_index or 0) + 1
end

function init(args)
  local ids_file, prefix = args[1], args[2]
  local headers = {}
  for i = 3, #args do
    local name, value = string.match(args[i], "^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  for id in io.lines(ids_file) do
    count = count + 1
    requests[count] = wrk.format("GET", prefix .. id, headers)
  end
  position = ((thread_index or 0) * 7919) % count
end

function request()
  position = position % count + 1
  return requests[position]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
