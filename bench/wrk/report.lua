-- wrk script of bench/run.sh.
--
-- With WRK_TOKENS=N in the environment, every request carries a bearer token
-- picked at random among the first N of WRK_PREFIX (default "tok"), numbered
-- as bench/internal/benchtok does (32 characters: the prefix, then the number
-- zero-padded); otherwise wrk sends its static request (-H headers), which is
-- cheaper for wrk itself.
--
-- done() prints one line that run.sh parses:
--   WRK rps=<req/s> p50_ms=<ms> p99_ms=<ms> requests=<n> errors=<n> non2xx=<n>

local tokens = tonumber(os.getenv("WRK_TOKENS") or "0") or 0
local prefix = os.getenv("WRK_PREFIX") or "tok"
local format = "%s%0" .. (32 - #prefix) .. "d"

local counter = 0
function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
end

function init(args)
   math.randomseed(os.time() * 1000 + (id or 0))
end

if tokens > 0 then
   local headers = {}
   request = function()
      headers["Authorization"] = "Bearer " .. string.format(format, prefix, math.random(0, tokens - 1))
      return wrk.format(nil, nil, headers)
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format("WRK rps=%.0f p50_ms=%.3f p99_ms=%.3f requests=%d errors=%d non2xx=%d\n",
      summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      summary.requests, e.connect + e.read + e.write + e.timeout, e.status))
end
