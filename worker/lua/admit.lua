-- Admit a job once per key.
-- KEYS[1] job hash, KEYS[2] state counts, KEYS[3] active set
-- ARGV[1] key, ARGV[2] canonical payload, ARGV[3] fingerprint, ARGV[4] now_ms
-- Returns 'new', 'duplicate' (same content) or 'conflict' (other content).
local known = redis.call('HGET', KEYS[1], 'fingerprint')
if known then
  if known == ARGV[3] then return 'duplicate' end
  return 'conflict'
end
redis.call('HSET', KEYS[1], 'key', ARGV[1], 'payload', ARGV[2],
  'fingerprint', ARGV[3], 'attempts', 0, 'createdAt', ARGV[4])
move(KEYS[1], KEYS[2], 'queued', ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 'new'
