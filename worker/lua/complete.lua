-- Finish a created job after its verification.
-- KEYS[1] job hash, KEYS[2] state counts, KEYS[3] active set,
-- KEYS[4] finished index
-- ARGV[1] key, ARGV[2] opportunity id, ARGV[3] final state
-- ('verified' or 'repaired'), ARGV[4] now_ms
-- Returns 1 when finished now, 0 when not in 'created', -1 when the
-- opportunity id does not match the recorded one.
if redis.call('HGET', KEYS[1], 'state') ~= 'created' then return 0 end
if redis.call('HGET', KEYS[1], 'opportunityId') ~= ARGV[2] then return -1 end
move(KEYS[1], KEYS[2], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[1], 'finishedAt', ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
return 1
