-- Bring a dead job back for another try; its dead letter goes away.
-- KEYS[1] job hash, KEYS[2] state counts, KEYS[3] active set,
-- KEYS[4] dead index, KEYS[5] dead-letter hash
-- ARGV[1] key, ARGV[2] now_ms, ARGV[3] new canonical payload or '',
-- ARGV[4] its fingerprint or ''
-- Returns the state the job goes back to ('queued', or 'created' when its
-- opportunity is already known), or 'not_dead'. What a create may have
-- left in flight (createPending, firstSentAt) is kept, so the next try
-- looks for that opportunity before it posts.
if redis.call('HGET', KEYS[1], 'state') ~= 'dead' then return 'not_dead' end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'payload', ARGV[3], 'fingerprint', ARGV[4])
end
local fields = redis.call('HKEYS', KEYS[1])
for _, name in ipairs(fields) do
  if string.find(name, '^unfinishedRuns') or string.find(name, '^failures') then
    redis.call('HDEL', KEYS[1], name)
  end
end
redis.call('HDEL', KEYS[1], 'deadReason', 'lastError', 'leaseHolder', 'leaseUntil')
local next_state = 'queued'
if redis.call('HEXISTS', KEYS[1], 'opportunityId') == 1 then next_state = 'created' end
move(KEYS[1], KEYS[2], next_state, ARGV[2])
redis.call('HINCRBY', KEYS[1], 'replays', 1)
redis.call('DEL', KEYS[5])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return next_state
