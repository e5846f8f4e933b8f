-- Take one request from a Capsule user's shared budget, paced over the window.
-- KEYS[1] budget hash (limit, remaining, resetAt, inflight, pausedUntil)
-- ARGV[1] now in epoch seconds (float), ARGV[2] requests kept in reserve,
-- ARGV[3] window length in seconds, ARGV[4] burst: the share of the limit
-- that may run ahead of an even pace (1 turns pacing off)
-- Returns '0' when the request may go now, else the seconds to wait.
local now = tonumber(ARGV[1])
local b = redis.call('HMGET', KEYS[1], 'remaining', 'resetAt', 'pausedUntil', 'limit')
local paused_until = tonumber(b[3] or '0')
if paused_until > now then return tostring(paused_until - now) end
local reset_at = tonumber(b[2] or '0')
if reset_at <= now then
  -- No window known yet (or it ended): send, and learn from the answer.
  redis.call('HINCRBY', KEYS[1], 'inflight', 1)
  return '0'
end
local remaining = tonumber(b[1] or '0')
if remaining <= tonumber(ARGV[2]) then return tostring(reset_at - now) end
local limit = tonumber(b[4] or '0')
local window = tonumber(ARGV[3])
if limit > 0 and window > 0 then
  -- Even pace: by now at most burst + limit * elapsed / window may be used.
  local left = math.min(math.max((reset_at - now) / window, 0), 1)
  local burst = math.max(1, tonumber(ARGV[4]) * limit)
  local used_after = limit - remaining + 1
  local allowed = burst + limit * (1 - left)
  if used_after > allowed then
    return tostring((used_after - allowed) * window / limit)
  end
end
redis.call('HINCRBY', KEYS[1], 'remaining', -1)
redis.call('HINCRBY', KEYS[1], 'inflight', 1)
return '0'
