-- Pace each wrk connection: wait WRK_DELAY_MS between its requests, so that
-- connections * 1000 / (delay + latency) requests per second are offered. Used by
-- bench_feed.py --rate to measure latency at a target rate instead of at saturation.
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
function delay()
  return delay_ms
end
