-- iopool bench http: pipelining, and wrk's results as one JSON line (written by iopool).
function init(args)
  local depth = tonumber(args[1]) or 1
  if depth > 1 then
    local requests = {}
    for i = 1, depth do requests[i] = wrk.format() end
    local batch = table.concat(requests)
    request = function() return batch end
  end
end

-- wrk's percentile() answers 0 where its coordinated-omission correction put counts below the
-- minimum it recorded (pipelined runs: it expects a response every duration ÷ requests per
-- connection); that is no latency: null.
local function percentile(latency, p)
  local value = latency:percentile(p)
  if value > 0 then return string.format("%.1f", value) else return "null" end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'IOPOOL-WRK {"requests":%.0f,"duration_us":%.0f,"p50_us":%s,"p99_us":%s,' ..
    '"connect_errors":%.0f,"read_errors":%.0f,"write_errors":%.0f,"status_errors":%.0f,"timeouts":%.0f}\n',
    summary.requests, summary.duration, percentile(latency, 50), percentile(latency, 99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
