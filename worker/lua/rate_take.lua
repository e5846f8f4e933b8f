-- Take one request from a Capsule user's shared budget.
-- KEYS[1] budget hash (limit, remaining, resetAt, inflight, pausedUntil)
-- ARGV[1] now in epoch seconds (float), ARGV[2] requests kept in reserve
-- Returns '0' when the request may go now, else the seconds to wait.
local now = tonumber(ARGV[1])
local b = redis.call('HMGET', KEYS[1], 'remaining', 'resetAt', 'pausedUntil')
local paused_until = tonumber(b[3] or '0')
if paused_until > now then return tostring(paused_until - now) end
local reset_at = tonumber(b[2] or '0')
if reset_at > now and tonumber(b[1] or '0') <= tonumber(ARGV[2]) then
  return tostring(reset_at - now)
end
if reset_at > now then redis.call('HINCRBY', KEYS[1], 'remaining', -1) end
redis.call('HINCRBY', KEYS[1], 'inflight', 1)
return '0'
