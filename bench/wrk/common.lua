-- Shared by the wrk scripts: per-thread random seeds, id lists and a machine-readable summary.

local common = {}

local next_thread = 0

-- Give each thread its own number, so that init() can seed its random generator apart from the others.
function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_number", next_thread)
end

function common.seed()
  math.randomseed(os.time() * 1000 + (thread_number or 0) * 7919)
end

-- The non-empty lines of a file, as a list.
function common.load_lines(path)
  local lines = {}
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    if line ~= "" then
      lines[#lines + 1] = line
    end
  end
  file:close()
  assert(#lines > 0, "no ids in " .. path)
  return lines
end

function common.pick(list)
  return list[math.random(1, #list)]
end

-- One line of JSON after wrk's own report; the benchmark driver reads it.
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end

return common
