-- Forget a dead job for good: its record and its dead letter.
-- KEYS[1] job hash, KEYS[2] state counts, KEYS[3] dead index,
-- KEYS[4] dead-letter hash
-- ARGV[1] key
-- Returns 1 when forgotten, 0 when the job is not dead.
if redis.call('HGET', KEYS[1], 'state') ~= 'dead' then return 0 end
redis.call('HINCRBY', KEYS[2], 'dead', -1)
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
