-- Fold a Capsule response's X-RateLimit-* headers into the shared budget.
-- KEYS[1] budget hash
-- ARGV[1] limit, ARGV[2] remaining, ARGV[3] reset epoch s ('' when the
-- response had no headers), ARGV[4] pause-until epoch s or '' (after a 429)
-- Requests still in flight have not been counted by the answer we hold,
-- so they are subtracted: the estimate errs on the side of caution.
local inflight = redis.call('HINCRBY', KEYS[1], 'inflight', -1)
if inflight < 0 then
  inflight = 0
  redis.call('HSET', KEYS[1], 'inflight', 0)
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'pausedUntil', ARGV[4])
end
if ARGV[3] == '' then return 0 end
local seen = math.max(tonumber(ARGV[2]) - inflight, 0)
local known_reset = tonumber(redis.call('HGET', KEYS[1], 'resetAt') or '0')
local new_reset = tonumber(ARGV[3])
if new_reset < known_reset then return 0 end
if new_reset == known_reset then
  local known = tonumber(redis.call('HGET', KEYS[1], 'remaining') or seen)
  seen = math.min(seen, known)
end
redis.call('HSET', KEYS[1], 'limit', ARGV[1], 'remaining', seen, 'resetAt', ARGV[3])
redis.call('EXPIREAT', KEYS[1], math.floor(new_reset) + 3600)
return 1
