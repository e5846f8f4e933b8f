-- Forget finished jobs past their retention (dead letters are kept).
-- KEYS[1] finished index, KEYS[2] state counts
-- ARGV[1] cutoff ms, ARGV[2] most jobs to forget, ARGV[3] job key prefix
-- Returns how many were forgotten.
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, key in ipairs(keys) do
  local job = ARGV[3] .. key
  local state = redis.call('HGET', job, 'state')
  if state then redis.call('HINCRBY', KEYS[2], state, -1) end
  redis.call('DEL', job)
  redis.call('ZREM', KEYS[1], key)
end
return #keys
